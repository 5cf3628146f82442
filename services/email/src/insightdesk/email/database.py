"""Preparing the database for the email service: ``python -m insightdesk.email migrate``.

Applies the queue schema's migrations, the ``email`` schema's own (``migrations/*.sql``), and
declares the queues the service consumes, so ``SendEmail`` jobs sent before its first start are
kept and run with the right retry policy.
"""

from __future__ import annotations

from typing import Any

import psycopg

from insightdesk.email.delivery_log import SCHEMA
from insightdesk.shared.contracts import SendEmail
from insightdesk.shared.errors import DatabaseError
from insightdesk.shared.migrations import load_migrations, migrate_schema
from insightdesk.shared.queue import QueueClient, QueueOptions
from insightdesk.shared.queue.migrator import migrate as migrate_queue_schema

EMAIL_QUEUE = SendEmail.queue
DEAD_LETTER_QUEUE = "email-dead"
EMAIL_QUEUE_OPTIONS = QueueOptions(
    retry_limit=5,
    retry_delay=5,
    retry_backoff=True,
    retry_delay_max=600,
    dead_letter=DEAD_LETTER_QUEUE,
)
DEAD_LETTER_OPTIONS = QueueOptions(retention=30 * 86400.0, delete_after=30 * 86400.0)
"""Dead letters wait for review (and redrive) a month before the queue's retention drops them."""


async def migrate_email_schema(conn: psycopg.AsyncConnection[Any], schema: str = SCHEMA) -> int:
    """Bring the service's own schema up to date (``conn`` must not be in a transaction)."""
    return await migrate_schema(
        conn, schema, load_migrations("insightdesk.email", "migrations", schema)
    )


async def migrate(dsn: str, *, queue_schema: str = "queue") -> None:
    """Everything the service needs in the database before it (or anyone sending to it) runs."""
    try:
        conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    except psycopg.Error as exc:
        raise DatabaseError(f"cannot connect to the database: {exc}") from exc
    async with conn:
        await migrate_queue_schema(conn, queue_schema)
        await migrate_email_schema(conn)
    async with QueueClient.connect(
        dsn, schema=queue_schema, min_size=1, max_size=1, migrate_schema=False
    ) as client:
        await declare_queues(client)


async def declare_queues(client: QueueClient) -> None:
    """Create ``email-dead`` (unless it exists) and ``email`` with its retry policy."""
    try:
        await client.get_queue(DEAD_LETTER_QUEUE)
    except LookupError:
        await client.create_queue(DEAD_LETTER_QUEUE, DEAD_LETTER_OPTIONS)
    await client.create_queue(EMAIL_QUEUE, EMAIL_QUEUE_OPTIONS)
