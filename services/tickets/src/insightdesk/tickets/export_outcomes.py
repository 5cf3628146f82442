"""The outcome of an export, from the reports service's events: the tickets worker consumes
queue ``tickets-exports`` (subscribed to ``report.export_ready`` and ``report.export_failed``)
and sets the state ``GET /reports/exports/{id}`` shows.

Register it on the worker's broker with :func:`register_export_outcomes`; the same event twice
writes the same values.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from insightdesk.shared.contracts import ReportExportFailed, ReportExportReady
from insightdesk.shared.errors import DatabaseError
from insightdesk.shared.queue import QueueClient, QueueOptions
from insightdesk.shared.queue.broker import PgBroker

EXPORTS_QUEUE = "tickets-exports"
EXPORT_EVENTS = (ReportExportReady.name, ReportExportFailed.name)
EXPORTS_OPTIONS = QueueOptions(retry_limit=5, retry_delay=5, retry_backoff=True)

READY = """
UPDATE tickets.exports
SET state = 'ready', rows = %(rows)s, download_url = %(download_url)s,
    expires_at = %(expires_at)s, finished_at = %(occurred_at)s, error = NULL
WHERE id = %(export_id)s AND organization_id = %(organization_id)s
"""
FAILED = """
UPDATE tickets.exports
SET state = 'failed', error = %(error)s, finished_at = %(occurred_at)s
WHERE id = %(export_id)s AND organization_id = %(organization_id)s AND state <> 'ready'
"""


async def record_export_outcome(
    event: ReportExportReady | ReportExportFailed, *, pool: AsyncConnectionPool[Any]
) -> bool:
    """True when the export exists (in the event's organization)."""
    statement = READY if isinstance(event, ReportExportReady) else FAILED
    try:
        async with pool.connection() as conn:
            cur = await conn.execute(statement, event.model_dump())
            return bool(cur.rowcount > 0)
    except psycopg.Error as exc:
        raise DatabaseError(f"recording export outcome failed: {exc}") from exc


async def declare_export_queue(client: QueueClient) -> None:
    """The queue and its subscriptions (``migrate``), so no outcome waits unheard."""
    await client.create_queue(EXPORTS_QUEUE, EXPORTS_OPTIONS)
    for event in EXPORT_EVENTS:
        await client.subscribe(event, EXPORTS_QUEUE)


def register_export_outcomes(broker: PgBroker, pool: AsyncConnectionPool[Any]) -> None:
    """Consume ``tickets-exports`` on ``broker`` (the tickets worker)."""

    @broker.subscriber(
        EXPORTS_QUEUE,
        events=EXPORT_EVENTS,
        concurrency=2,
        policy=EXPORTS_OPTIONS,
        title="tickets-exports",
        description="report.export_ready / report.export_failed set an export's state",
    )
    async def export_outcome(body: dict[str, Any]) -> bool:
        event: ReportExportReady | ReportExportFailed = (
            ReportExportReady.model_validate(body)
            if "download_url" in body
            else ReportExportFailed.model_validate(body)
        )
        return await record_export_outcome(event, pool=pool)
