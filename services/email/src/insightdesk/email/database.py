"""Preparing the database for the email service: ``python -m insightdesk.email migrate``.

Applies the queue schema's migrations, the ``email`` schema's own (``migrations/*.sql``), and
declares the queues the service consumes, so ``SendEmail`` jobs sent before its first start are
kept and run with the right retry policy.
"""

from __future__ import annotations

from insightdesk.email.delivery_log import SCHEMA
from insightdesk.email.settings import EmailSettings
from insightdesk.shared.contracts import MaintenanceCleanupRequested, SendEmail
from insightdesk.shared.queue import QueueClient, QueueOptions
from insightdesk.shared.service import migrate_service

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
MAINTENANCE_QUEUE = "email-maintenance"
"""Receives ``maintenance.cleanup_requested`` (delivery-log purge)."""
CLEANUP_EVENT = MaintenanceCleanupRequested.name
MAINTENANCE_OPTIONS = QueueOptions(retry_limit=3, retry_delay=60, retry_backoff=True, expire_in=900)
"""Dead letters wait for review (and redrive) a month before the queue's retention drops them."""


async def migrate(dsn: str, *, queue_schema: str = "queue") -> None:
    """Everything the service needs in the database before it (or anyone sending to it) runs."""
    await migrate_service(
        dsn,
        queue_schema=queue_schema,
        schema=SCHEMA,
        package="insightdesk.email",
        declare=declare_queues,
    )


async def migrate_settings(settings: EmailSettings) -> None:
    """The ``migrate`` command."""
    await migrate(settings.require_database_url(), queue_schema=settings.queue_schema)


async def declare_queues(client: QueueClient) -> None:
    """Create ``email-dead`` (unless it exists), ``email`` with its retry policy, and
    ``email-maintenance`` subscribed to ``maintenance.cleanup_requested``."""
    try:
        await client.get_queue(DEAD_LETTER_QUEUE)
    except LookupError:
        await client.create_queue(DEAD_LETTER_QUEUE, DEAD_LETTER_OPTIONS)
    await client.create_queue(EMAIL_QUEUE, EMAIL_QUEUE_OPTIONS)
    await client.create_queue(MAINTENANCE_QUEUE, MAINTENANCE_OPTIONS)
    await client.subscribe(CLEANUP_EVENT, MAINTENANCE_QUEUE)
