"""The tickets ``worker`` process: the service's queue consumers, scaled apart from the API.

* queue ``ticket-actions`` (:class:`TicketAction` bodies; the scheduler's ``auto-close``
  schedule fires ``{"action": "auto-close"}`` hourly):
  :func:`~insightdesk.tickets.lifecycle.auto_close`;
* queue ``tickets-maintenance``, subscribed to ``maintenance.cleanup_requested``:
  :func:`~insightdesk.tickets.lifecycle.archive_closed`;
* queue ``ticket-notifications`` (one job per (ticket, recipient) notification window):
  :func:`~insightdesk.tickets.subscribers.subscribe_notification_flush` mails what the window
  collected;
* queues ``tickets.sla-targets`` (``sla.clock_changed``) and ``tickets.sla-alerts``
  (``sla.warning``, ``sla.breached``): :mod:`insightdesk.tickets.sla_consumers`.

Its own psycopg pool for the ``tickets`` schema; the broker's pool for the queue.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from faststream.asgi import AsgiFastStream
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from insightdesk.shared.contracts import Contract, MaintenanceCleanupRequested
from insightdesk.shared.errors import DatabaseError
from insightdesk.shared.queue import Reject, make_pool
from insightdesk.shared.queue.broker import (
    PgBroker,
    PgPrometheusMiddleware,
    PgTelemetryMiddleware,
    QueueMetrics,
    make_asgi_app,
)
from insightdesk.shared.service import ProcessContext
from insightdesk.tickets.database import (
    ACTIONS_OPTIONS,
    ACTIONS_QUEUE,
    CLEANUP_EVENT,
    MAINTENANCE_OPTIONS,
    MAINTENANCE_QUEUE,
    make_engine,
)
from insightdesk.tickets.export_outcomes import register_export_outcomes
from insightdesk.tickets.lifecycle import archive_closed, auto_close
from insightdesk.tickets.lifecycle_store import PgLifecycleStore
from insightdesk.tickets.settings import TicketsSettings
from insightdesk.tickets.sla_consumers import register_sla_consumers
from insightdesk.tickets.subscribers import subscribe_notification_flush

log = logging.getLogger(__name__)


class TicketAction(Contract):
    """A job of queue ``ticket-actions`` (a
    :class:`~insightdesk.shared.contracts.ScheduledTick` with an ``action``)."""

    action: str
    schedule: str | None = None


def build_worker_broker(
    settings: TicketsSettings,
    store_pool: AsyncConnectionPool[Any],
    *,
    ctx: ProcessContext,
    queue_metrics: QueueMetrics | None = None,
    sessions: async_sessionmaker[AsyncSession] | None = None,
) -> PgBroker:
    broker = PgBroker(
        settings.require_database_url(),
        schema=settings.queue_schema,
        max_size=6,  # one consumer connection for all queues, and room to publish
        queue_metrics=queue_metrics,
        graceful_timeout=settings.shutdown_timeout,
        middlewares=[
            PgTelemetryMiddleware(tracer_provider=ctx.tracer_provider),
            PgPrometheusMiddleware(registry=ctx.registry, app_name="tickets-worker"),
        ],
        description=(
            "InsightDesk tickets worker: auto-close, cleanup, notification windows, SLA "
            "targets and alerts, export outcomes"
        ),
    )
    store = PgLifecycleStore(store_pool, broker)
    if sessions is not None:
        register_sla_consumers(broker, sessions)
        subscribe_notification_flush(broker, sessions=sessions, settings=settings)

    @broker.subscriber(ACTIONS_QUEUE, concurrency=1, policy=ACTIONS_OPTIONS, title="ticket-actions")
    async def ticket_action(body: TicketAction) -> dict[str, object]:
        if body.action != "auto-close":
            raise Reject(f"unknown ticket action {body.action!r}")
        result = await auto_close(
            store=store,
            now=ctx.clock.now(),
            batch_size=settings.auto_close_batch_size,
            max_seconds=settings.auto_close_max_seconds,
        )
        log.info("auto-close closed %d ticket(s) in %d batch(es)", result.done, result.batches)
        return result.as_output()

    @broker.subscriber(
        MAINTENANCE_QUEUE,
        events=[CLEANUP_EVENT],
        concurrency=1,
        policy=MAINTENANCE_OPTIONS,
        title="tickets-maintenance",
    )
    async def cleanup(body: MaintenanceCleanupRequested) -> dict[str, object]:
        result = await archive_closed(
            store=store,
            now=ctx.clock.now(),
            after_days=settings.archive_after_days,
            batch_size=settings.cleanup_batch_size,
            max_seconds=settings.cleanup_max_seconds,
        )
        log.info("cleanup archived %d ticket(s)", result.done)
        return result.as_output()

    register_export_outcomes(broker, store_pool)  # report.export_* set an export's state
    return broker


@asynccontextmanager
async def worker_process(
    settings: TicketsSettings, ctx: ProcessContext
) -> AsyncIterator[AsgiFastStream]:
    """The ``worker`` process for :mod:`insightdesk.shared.service`."""
    pool = make_pool(
        settings.require_database_url(), min_size=1, max_size=settings.worker_db_pool_size
    )
    try:
        await pool.open(wait=True, timeout=30)
    except psycopg.Error as exc:
        raise DatabaseError(f"cannot connect to the database: {exc}") from exc
    # the SLA consumers use the service's SQLAlchemy models (tickets schema) on their own engine
    engine = make_engine(settings.require_database_url(), pool_size=2, max_overflow=2)
    sessions = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
    try:
        queue_metrics = QueueMetrics(registry=ctx.registry)
        broker = build_worker_broker(
            settings, pool, ctx=ctx, queue_metrics=queue_metrics, sessions=sessions
        )

        async def broker_answers() -> bool:
            return broker.running and await broker.ping(settings.ready_timeout)

        async def database_answers() -> bool:
            async with pool.connection() as conn:
                await conn.execute("SELECT 1")
            return True

        async def refresh_queue_metrics() -> None:
            if broker.running:
                await queue_metrics.refresh(broker.client)

        ctx.health.add_check("broker", broker_answers)
        ctx.watch_queue(broker.loops)  # a dead claim/heartbeat loop ends the process
        ctx.health.add_check("database", database_answers)
        ctx.health.scrape_hooks.append(refresh_queue_metrics)
        yield make_asgi_app(broker, title="InsightDesk tickets worker", queue_metrics=queue_metrics)
    finally:
        await engine.dispose()
        await pool.close()
