"""Shared fixtures: a real PostgreSQL, a migrated template database, a fresh clone per test.

Connection: ``DATABASE_URL``/``PG*`` if set, else 127.0.0.1:5432 if reachable (user postgres),
else an embedded server (pgserver) started for the run.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import conninfo, sql

from insightdesk.shared.db import dsn_from_env, start_embedded, tcp_reachable
from insightdesk.shared.queue import QueueClient
from insightdesk.shared.queue.migrator import migrate


def _with_dbname(dsn: str, dbname: str) -> str:
    params = conninfo.conninfo_to_dict(dsn)
    params["dbname"] = dbname
    return conninfo.make_conninfo("", **params)


@pytest.fixture(scope="session")
def pg_server_dsn() -> Iterator[str]:
    """DSN of a server where the suite may create databases (points at its admin database)."""
    dsn = dsn_from_env()
    if dsn is not None:
        yield dsn
        return
    if tcp_reachable("127.0.0.1", 5432):
        yield "postgresql://postgres@127.0.0.1:5432/postgres"
        return
    embedded = start_embedded(Path(tempfile.mkdtemp(prefix="insightdesk-pg-")))
    try:
        yield embedded.dsn
    finally:
        embedded.stop()


@pytest.fixture(scope="session")
def template_db(pg_server_dsn: str) -> Iterator[str]:
    """A database migrated once per run, cloned for every test."""
    name = f"insightdesk_tpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(pg_server_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    async def _migrate() -> None:
        conn = await psycopg.AsyncConnection.connect(
            _with_dbname(pg_server_dsn, name), autocommit=True
        )
        async with conn:
            await migrate(conn, "queue")

    asyncio.run(_migrate())
    try:
        yield name
    finally:
        with psycopg.connect(pg_server_dsn, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def db_dsn(pg_server_dsn: str, template_db: str) -> Iterator[str]:
    """A fresh database for one test, cloned from the migrated template."""
    name = f"insightdesk_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server_dsn, autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template_db)
            )
        )
    try:
        yield _with_dbname(pg_server_dsn, name)
    finally:
        with psycopg.connect(pg_server_dsn, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
async def client(db_dsn: str) -> AsyncIterator[QueueClient]:
    async with QueueClient.connect(db_dsn, migrate_schema=False) as c:
        yield c
