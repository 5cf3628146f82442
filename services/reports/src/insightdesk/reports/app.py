"""Composition root of the reports service: settings in, a running process out.

:func:`build_broker` wires the transport-free handlers (:mod:`insightdesk.reports.handlers`) to
the queues; :func:`reports_process` is the service's process for the shared entry
(:mod:`insightdesk.shared.service`): its own pool, the store, storage, the broker and the ASGI
app (``/downloads/{token}`` and the broker's AsyncAPI docs; ``/healthz``, ``/readyz`` and
``/metrics`` come from the entry).

Queues:

* ``reports`` — the scheduler's hourly ``daily-digest`` / ``weekly-report`` ticks (body
  ``{"schedule": ...}``, slot in the ``slot`` header) and the per-organization jobs they plan
  (``{"kind", "organization_id", "period_start"}``, job id derived from the three);
* ``reports-export`` — ``ExportReport``;
* ``reports-events`` — organization, user and ticket events (told apart by shape);
  ``reports-sla-warning``, ``reports-sla-breached``, ``reports-sla-clock`` — the SLA events
  (warning and breach have one shape, so a queue each);
* ``reports-maintenance`` — ``maintenance.cleanup_requested``: expired export files deleted.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import date, datetime
from typing import Any

import psycopg
from faststream import BaseMiddleware
from faststream.asgi import AsgiFastStream
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry
from pydantic import BaseModel, ValidationError
from starlette.types import Receive, Scope, Send

from insightdesk.reports.digest import KINDS, ReportPlan
from insightdesk.reports.downloads import downloads_app
from insightdesk.reports.facts import parse_event
from insightdesk.reports.handlers import (
    ReportOptions,
    ReportStore,
    export_failed,
    export_report,
    plan_reports,
    record_event,
    remove_expired_exports,
    send_report,
)
from insightdesk.reports.settings import ReportsSettings
from insightdesk.reports.store import PgReportStore
from insightdesk.shared.clock import Clock, SystemClock
from insightdesk.shared.contracts import (
    Event,
    ExportReport,
    SendEmail,
    SlaBreached,
    SlaClockChanged,
    SlaWarning,
)
from insightdesk.shared.errors import DatabaseError
from insightdesk.shared.queue import JobOptions, QueueClient, QueueOptions, Reject
from insightdesk.shared.queue.broker import (
    PgBroker,
    PgMessage,
    PgPrometheusMiddleware,
    PgTelemetryMiddleware,
    QueueMetrics,
    make_asgi_app,
)
from insightdesk.shared.queue.client import make_pool
from insightdesk.shared.service import ProcessContext
from insightdesk.shared.storage import ObjectStorage
from insightdesk.shared.storage.factory import make_storage

log = logging.getLogger(__name__)

SERVICE_NAME = "reports"
REPORTS_QUEUE = "reports"
EXPORT_QUEUE = ExportReport.queue
EVENTS_QUEUE = "reports-events"
SLA_WARNING_QUEUE = "reports-sla-warning"
SLA_BREACHED_QUEUE = "reports-sla-breached"
SLA_CLOCK_QUEUE = "reports-sla-clock"
MAINTENANCE_QUEUE = "reports-maintenance"
TICKET_EVENTS = (
    "organization.created",
    "organization.updated",
    "user.registered",
    "ticket.created",
    "ticket.message_added",
    "ticket.status_changed",
    "ticket.assigned",
    "ticket.priority_changed",
    "ticket.closed",
)
CLEANUP_EVENT = "maintenance.cleanup_requested"
RETRYING = QueueOptions(retry_limit=5, retry_delay=5, retry_backoff=True, retry_delay_max=600)
QUEUES: dict[str, QueueOptions] = {
    REPORTS_QUEUE: RETRYING,
    EXPORT_QUEUE: QueueOptions(retry_limit=3, retry_delay=10, retry_backoff=True),
    EVENTS_QUEUE: RETRYING,
    SLA_WARNING_QUEUE: RETRYING,
    SLA_BREACHED_QUEUE: RETRYING,
    SLA_CLOCK_QUEUE: RETRYING,
    MAINTENANCE_QUEUE: QueueOptions(retry_limit=2, retry_delay=60),
}
SUBSCRIPTIONS: tuple[tuple[str, str], ...] = (
    *((event, EVENTS_QUEUE) for event in TICKET_EVENTS),
    (SlaWarning.name, SLA_WARNING_QUEUE),
    (SlaBreached.name, SLA_BREACHED_QUEUE),
    (SlaClockChanged.name, SLA_CLOCK_QUEUE),
    (CLEANUP_EVENT, MAINTENANCE_QUEUE),
)


class ReportJob(BaseModel):
    """A body on the ``reports`` queue: a scheduler tick, or a planned per-organization job."""

    schedule: str | None = None
    kind: str | None = None
    organization_id: uuid.UUID | None = None
    period_start: date | None = None


class RejectMalformed(BaseMiddleware):
    """A body that cannot be parsed never will be: dead-letter it at once."""

    async def consume_scope(self, call_next: Callable[[Any], Awaitable[Any]], msg: Any) -> Any:
        try:
            return await call_next(msg)
        except ValidationError as exc:
            raise Reject(f"malformed message: {exc}") from exc


def report_options(settings: ReportsSettings) -> ReportOptions:
    return ReportOptions(
        digest_hour=settings.digest_hour,
        weekly_hour=settings.weekly_hour,
        skip_without_activity=settings.skip_empty_digest,
        link_ttl_hours=settings.link_ttl_hours,
        public_base_url=settings.public_base_url,
        signing_key=settings.signing_key.get_secret_value().encode(),
    )


def _slot(headers: dict[str, Any]) -> datetime | None:
    raw = headers.get("slot")
    if not isinstance(raw, str):
        return None
    try:
        slot = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return slot if slot.tzinfo is not None else None


class BrokerJobs:
    """Per-organization report jobs on the ``reports`` queue, one per plan (its job id)."""

    def __init__(self, broker: PgBroker) -> None:
        self.broker = broker

    async def enqueue(self, plans: Sequence[ReportPlan]) -> int:
        created = 0
        for p in plans:
            body = {
                "kind": p.kind,
                "organization_id": str(p.organization_id),
                "period_start": p.period_start.isoformat(),
            }
            job = await self.broker.publish(body, REPORTS_QUEUE, options=JobOptions(id=p.job_id))
            created += job is not None
        return created


def publisher(broker: PgBroker) -> Callable[[SendEmail | Event, Any], Awaitable[object]]:
    async def publish(message: SendEmail | Event, conn: psycopg.AsyncConnection[Any]) -> object:
        if isinstance(message, Event):
            return await broker.publish_event(message.name, message, conn=conn)
        return await broker.publish(message, message.queue, conn=conn)

    return publish


def build_broker(
    settings: ReportsSettings,
    *,
    store: ReportStore | Callable[[PgBroker], ReportStore],
    storage: ObjectStorage,
    clock: Clock,
    tracer_provider: TracerProvider | None = None,
    registry: CollectorRegistry | None = None,
    queue_metrics: QueueMetrics | None = None,
) -> PgBroker:
    """The broker with every reports subscriber. ``store`` is the store, or a factory given the
    broker (the Postgres store publishes through it)."""
    middlewares: list[Any] = [RejectMalformed]
    if tracer_provider is not None:
        middlewares.append(PgTelemetryMiddleware(tracer_provider=tracer_provider))
    if registry is not None:
        middlewares.append(PgPrometheusMiddleware(registry=registry, app_name=SERVICE_NAME))
    broker = PgBroker(
        settings.database_url or "",
        schema=settings.queue_schema,
        max_size=len(QUEUES) + 4,  # a pump connection per consumed queue, and claims/publishes
        queue_metrics=queue_metrics,
        graceful_timeout=settings.shutdown_timeout,
        middlewares=middlewares,
        description="InsightDesk reports: facts, daily digests, weekly reports, exports",
    )
    facts = store(broker) if callable(store) else store
    options = report_options(settings)
    jobs = BrokerJobs(broker)

    @broker.subscriber(
        EVENTS_QUEUE,
        events=TICKET_EVENTS,
        concurrency=settings.events_concurrency,
        policy=QUEUES[EVENTS_QUEUE],
        description="ticket and user events become facts (once per event)",
    )
    async def on_event(body: dict[str, Any]) -> bool:
        event = parse_event(body)
        if event is None:
            raise Reject(f"not a ticket or user event: {sorted(body)}")
        return await record_event(event, store=facts)

    @broker.subscriber(
        SLA_WARNING_QUEUE,
        events=(SlaWarning.name,),
        concurrency=2,
        policy=QUEUES[SLA_WARNING_QUEUE],
    )
    async def on_sla_warning(event: SlaWarning) -> bool:
        return await record_event(event, store=facts)

    @broker.subscriber(
        SLA_BREACHED_QUEUE,
        events=(SlaBreached.name,),
        concurrency=2,
        policy=QUEUES[SLA_BREACHED_QUEUE],
    )
    async def on_sla_breached(event: SlaBreached) -> bool:
        return await record_event(event, store=facts)

    @broker.subscriber(
        SLA_CLOCK_QUEUE,
        events=(SlaClockChanged.name,),
        concurrency=2,
        policy=QUEUES[SLA_CLOCK_QUEUE],
    )
    async def on_sla_clock(event: SlaClockChanged) -> bool:
        return await record_event(event, store=facts)

    @broker.subscriber(
        REPORTS_QUEUE,
        concurrency=2,
        policy=QUEUES[REPORTS_QUEUE],
        description="hourly ticks plan per-organization digests; each job sends one",
    )
    async def on_report(body: ReportJob, message: PgMessage) -> dict[str, Any]:
        if body.organization_id is None:
            kind = body.schedule or body.kind
            if kind not in KINDS:
                raise Reject(f"unknown report tick {kind!r}")
            now = _slot(message.job.headers) or clock.now()
            planned = await plan_reports(kind, now, store=facts, jobs=jobs, options=options)
            return {"planned": planned}
        if body.kind not in KINDS or body.period_start is None:
            raise Reject(f"incomplete report job: {body!r}")
        job = ReportPlan(body.kind, body.organization_id, body.period_start)
        outcome = await send_report(job, clock.now(), store=facts, storage=storage, options=options)
        return {"outcome": outcome}

    @broker.subscriber(
        EXPORT_QUEUE,
        concurrency=settings.export_concurrency,
        policy=QUEUES[EXPORT_QUEUE],
        description="ExportReport: rows to CSV/XLSX in storage, signed link mailed",
    )
    async def on_export(command: ExportReport, message: PgMessage) -> dict[str, Any]:
        job = message.job
        try:
            ready = await export_report(
                command, clock.now(), store=facts, storage=storage, options=options
            )
        except Exception as exc:
            if job.retry_count >= job.retry_limit:
                await export_failed(command, repr(exc), clock.now(), store=facts)
                raise Reject(f"export failed: {exc!r}") from exc
            raise
        return {"rows": ready.rows, "size_bytes": ready.size_bytes}

    @broker.subscriber(
        MAINTENANCE_QUEUE,
        events=(CLEANUP_EVENT,),
        concurrency=1,
        policy=QUEUES[MAINTENANCE_QUEUE],
    )
    async def on_cleanup(body: dict[str, Any]) -> dict[str, int]:
        removed = await remove_expired_exports(clock.now(), store=facts, storage=storage)
        return {"removed": removed}

    return broker


async def declare_queues(client: QueueClient) -> None:
    """The reports queues with their retry policies, and their event subscriptions."""
    for name, options in QUEUES.items():
        await client.create_queue(name, options)
    await client.ensure_queue(SendEmail.queue)  # the email service defines its policy
    for event, queue in SUBSCRIPTIONS:
        await client.subscribe(event, queue)


def route(
    downloads: Callable[[Scope, Receive, Send], Awaitable[None]], rest: AsgiFastStream
) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """``/downloads/...`` to the downloads app; everything else (lifespan, docs) to the broker's."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/downloads/"):
            await downloads(scope, receive, send)
        else:
            await rest(scope, receive, send)

    return app


@asynccontextmanager
async def reports_process(
    settings: ReportsSettings, ctx: ProcessContext
) -> AsyncIterator[Callable[[Scope, Receive, Send], Awaitable[None]]]:
    """The reports service's one process (see :mod:`insightdesk.shared.service`)."""
    dsn = settings.require_database_url()
    pool = make_pool(dsn, min_size=1, max_size=settings.db_pool_size)
    try:
        await pool.open(wait=True, timeout=30)
    except psycopg.Error as exc:
        raise DatabaseError(f"cannot connect to the database: {exc}") from exc
    try:
        storage = make_storage(settings.storage_config())
        queue_metrics = QueueMetrics(registry=ctx.registry)
        broker = build_broker(
            settings,
            store=lambda b: PgReportStore(pool, publisher(b)),
            storage=storage,
            clock=ctx.clock,
            tracer_provider=ctx.tracer_provider,
            registry=ctx.registry,
            queue_metrics=queue_metrics,
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
        inner = make_asgi_app(
            broker,
            title="InsightDesk reports service",
            description="Daily digests, weekly reports and exports.",
            queue_metrics=queue_metrics,
        )
        secret = settings.signing_key.get_secret_value().encode()
        yield route(downloads_app(storage, secret, ctx.clock.now), inner)
    finally:
        await pool.close()


def system_clock() -> Clock:
    return SystemClock()
