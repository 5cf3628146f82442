"""The service's database plumbing: the SQLAlchemy engine and the ``migrate`` step.

The engine is a ``postgresql+psycopg`` one whose connections are opened by psycopg itself from
``DATABASE_URL`` (``async_creator``): any libpq DSN works unchanged — URI or ``key=value``,
unix sockets, ``PG*`` variables — and there is no second URL format to keep in step. The
broker needs exactly this driver to join a session's transaction.
"""

from __future__ import annotations

from typing import Any

import psycopg
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from insightdesk.shared.contracts import SendEmail
from insightdesk.shared.migrations import Migration, load_migrations, migrate_schema
from insightdesk.shared.queue import QueueClient
from insightdesk.shared.queue.migrator import migrate as migrate_queue
from insightdesk.tickets.models import SCHEMA
from insightdesk.tickets.notifications import FLUSH_QUEUE
from insightdesk.tickets.subscribers import FLUSH_QUEUE_OPTIONS

SENDS_TO = (SendEmail.queue,)
"""Queues this service sends commands to; ``migrate`` and start-up make sure they exist."""


def make_engine(dsn: str, *, pool_size: int = 10, max_overflow: int = 5) -> AsyncEngine:
    async def connect() -> psycopg.AsyncConnection[Any]:
        return await psycopg.AsyncConnection.connect(dsn)

    return create_async_engine(
        "postgresql+psycopg://",
        async_creator=connect,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=True,
    )


def migrations() -> tuple[Migration, ...]:
    """The ``tickets`` schema's migrations (``migrations/NNNN_*.sql`` of this package)."""
    return load_migrations(__package__ or "insightdesk.tickets", "migrations", SCHEMA)


async def migrate_database(dsn: str, *, queue_schema: str = "queue") -> None:
    """Apply the queue schema's and the ``tickets`` schema's migrations, and create the queues
    the service sends to, so nothing sent before the consumer's first start is lost."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await migrate_queue(conn, queue_schema)
        await migrate_schema(conn, SCHEMA, migrations())
    async with QueueClient.connect(
        dsn, schema=queue_schema, min_size=1, max_size=1, migrate_schema=False
    ) as client:
        for queue in SENDS_TO:
            await client.ensure_queue(queue)
        await client.create_queue(FLUSH_QUEUE, FLUSH_QUEUE_OPTIONS)
