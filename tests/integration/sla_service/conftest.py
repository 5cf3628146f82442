"""Fixtures for the SLA service against real PostgreSQL: the migrated database (queue schema,
``sla`` schema, its queues and subscriptions), a pool, a connected broker and unit factories."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from insightdesk.shared.queue import make_pool
from insightdesk.shared.queue.broker import PgBroker
from insightdesk.sla.__main__ import migrate
from insightdesk.sla.settings import SlaSettings
from insightdesk.sla.store import PgUnitFactory


@pytest.fixture
async def sla_dsn(db_dsn: str) -> str:
    await migrate(SlaSettings(database_url=db_dsn, environment="test"))
    return db_dsn


@pytest.fixture
async def sla_pool(sla_dsn: str) -> AsyncIterator[AsyncConnectionPool[Any]]:
    pool = make_pool(sla_dsn, min_size=1, max_size=4)
    await pool.open(wait=True)
    yield pool
    await pool.close()


@pytest.fixture
async def publisher(sla_dsn: str) -> AsyncIterator[PgBroker]:
    """A connected broker without subscribers: the outbox of the units."""
    broker = PgBroker(sla_dsn, logger=None, min_size=1, max_size=2)
    await broker.connect()
    yield broker
    await broker.stop()


@pytest.fixture
def pg_units(sla_pool: AsyncConnectionPool[Any], publisher: PgBroker) -> PgUnitFactory:
    return PgUnitFactory(sla_pool, publisher)
