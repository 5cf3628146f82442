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

from insightdesk.shared.contracts import ExportReport, MaintenanceCleanupRequested, SendEmail
from insightdesk.shared.migrations import Migration, load_migrations
from insightdesk.shared.queue import QueueClient, QueueOptions
from insightdesk.shared.service import migrate_service
from insightdesk.tickets.export_outcomes import declare_export_queue
from insightdesk.tickets.models import SCHEMA
from insightdesk.tickets.notifications import FLUSH_QUEUE
from insightdesk.tickets.settings import TicketsSettings
from insightdesk.tickets.sla_consumers import declare_sla_queues
from insightdesk.tickets.subscribers import FLUSH_QUEUE_OPTIONS

SENDS_TO = (SendEmail.queue, ExportReport.queue)
"""Queues this service sends commands to; ``migrate`` and start-up make sure they exist."""
ACTIONS_QUEUE = "ticket-actions"
"""The worker's queue of ticket jobs (auto-close, fired by the scheduler)."""
ACTIONS_OPTIONS = QueueOptions(retry_limit=3, retry_delay=30, retry_backoff=True, expire_in=900)
MAINTENANCE_QUEUE = "tickets-maintenance"
"""The worker's queue of ``maintenance.cleanup_requested`` events."""
CLEANUP_EVENT = MaintenanceCleanupRequested.name
MAINTENANCE_OPTIONS = QueueOptions(retry_limit=3, retry_delay=60, retry_backoff=True, expire_in=900)


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
    await migrate_service(
        dsn,
        queue_schema=queue_schema,
        schema=SCHEMA,
        package=__package__ or "insightdesk.tickets",
        declare=declare_queues,
    )


async def migrate(settings: TicketsSettings) -> None:
    """The ``migrate`` command."""
    await migrate_database(settings.require_database_url(), queue_schema=settings.queue_schema)


async def declare_queues(client: QueueClient) -> None:
    """The queues the API sends to, and the worker's queues with their policies (subscribed to
    their events, so nothing published before the worker's first start is lost)."""
    for queue in SENDS_TO:
        await client.ensure_queue(queue)
    await client.create_queue(ACTIONS_QUEUE, ACTIONS_OPTIONS)
    await client.create_queue(MAINTENANCE_QUEUE, MAINTENANCE_OPTIONS)
    await client.subscribe(CLEANUP_EVENT, MAINTENANCE_QUEUE)
    await declare_export_queue(client)
    await declare_sla_queues(client)
    await client.create_queue(FLUSH_QUEUE, FLUSH_QUEUE_OPTIONS)  # the worker's notification windows
