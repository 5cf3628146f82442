"""Installs and upgrades the queue schema, safely from any number of processes at once.

All of it runs in one transaction under a transaction-level advisory lock keyed on the schema
name: the first process applies what is missing, the others wait on the lock and then find
nothing left to do. A crash mid-way rolls everything back.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from psycopg import sql

from insightdesk.shared.errors import MigrationError
from insightdesk.shared.queue.statements import migrations, validate_schema

log = logging.getLogger(__name__)

LATEST_VERSION = max(m.version for m in migrations("queue"))


async def migrate(conn: psycopg.AsyncConnection[Any], schema: str = "queue") -> int:
    """Bring ``schema`` to the latest version; returns the version it ended at.

    ``conn`` must not be inside a transaction; the migration commits on its own.
    """
    validate_schema(schema)
    ident = sql.Identifier(schema)
    try:
        async with conn.transaction():
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                (f"insightdesk.queue.migrate:{schema}",),
            )
            await conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(ident))
            await conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {}.version "
                    "(version integer NOT NULL, applied_on timestamptz NOT NULL DEFAULT now())"
                ).format(ident)
            )
            cur = await conn.execute(
                sql.SQL("SELECT COALESCE(max(version), 0) FROM {}.version").format(ident)
            )
            row = await cur.fetchone()
            current = int(row[0]) if row else 0
            if current > LATEST_VERSION:
                raise MigrationError(
                    f"schema {schema!r} is at version {current}, newer than this code "
                    f"({LATEST_VERSION}); upgrade the library"
                )
            for migration in migrations(schema):
                if migration.version <= current:
                    continue
                log.info("applying queue migration %s to schema %s", migration.name, schema)
                await conn.execute(migration.text.encode())
                await conn.execute(
                    sql.SQL("INSERT INTO {}.version (version) VALUES (%s)").format(ident),
                    (migration.version,),
                )
                current = migration.version
            return current
    except psycopg.Error as exc:
        raise MigrationError(f"could not migrate queue schema {schema!r}: {exc}") from exc
