"""Fixtures of the reports service's integration tests: a database with the queue and
``reports`` schemas, and the store over a pool."""

from __future__ import annotations

from collections.abc import AsyncIterator

import psycopg
import pytest

from insightdesk.reports.store import PgReportStore, migrate_reports_schema
from insightdesk.shared.queue import make_pool


@pytest.fixture
async def reports_dsn(db_dsn: str) -> str:
    async with await psycopg.AsyncConnection.connect(db_dsn, autocommit=True) as conn:
        await migrate_reports_schema(conn)
    return db_dsn


@pytest.fixture
async def store(reports_dsn: str) -> AsyncIterator[PgReportStore]:
    pool = make_pool(reports_dsn, min_size=1, max_size=4)
    await pool.open()
    try:
        yield PgReportStore(pool)
    finally:
        await pool.close()
