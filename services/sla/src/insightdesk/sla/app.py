"""Composition root of the SLA service: :func:`sla_process` (run by
:mod:`insightdesk.shared.service`) opens the service's pool and its broker and wires the
subscribers to the transport-free handlers (:mod:`insightdesk.sla.handlers`).

Queues it consumes:

* ``sla.tickets`` — the ticket events it follows; ``sla.config`` — ``sla_policy.changed``
  and ``business_calendar.changed``;
* ``sla-check`` — deadline, warning and escalation jobs, each due at its exact instant
  (``start_after``) with a singleton key per (ticket, target, cycle, deadline version);
* ``sla-scan`` — the safety net the scheduler fires every minute.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from faststream.asgi import AsgiFastStream
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry, Counter

from insightdesk.shared.clock import Clock, SystemClock
from insightdesk.shared.contracts import (
    BusinessCalendarChanged,
    Event,
    SlaPolicyChanged,
    TicketAssigned,
    TicketClosed,
    TicketCreated,
    TicketMessageAdded,
    TicketPriorityChanged,
    TicketStatusChanged,
)
from insightdesk.shared.errors import DatabaseError
from insightdesk.shared.queue import QueueOptions, QueuePolicy, make_pool
from insightdesk.shared.queue.broker import (
    PgBroker,
    PgPrometheusMiddleware,
    PgTelemetryMiddleware,
    QueueMetrics,
    SnoozeMessage,
    make_asgi_app,
)
from insightdesk.shared.service import ProcessContext
from insightdesk.sla import handlers
from insightdesk.sla.ports import UnitFactory
from insightdesk.sla.settings import SlaSettings
from insightdesk.sla.store import CHECK_QUEUE, SCAN_QUEUE, PgUnitFactory, check_from_payload

log = logging.getLogger(__name__)

SERVICE_NAME = "sla"
TICKET_EVENTS: tuple[type[Event], ...] = (
    TicketCreated,
    TicketMessageAdded,
    TicketStatusChanged,
    TicketAssigned,
    TicketPriorityChanged,
    TicketClosed,
)
CONFIG_EVENTS: tuple[type[Event], ...] = (SlaPolicyChanged, BusinessCalendarChanged)
EVENT_QUEUE_OPTIONS = QueueOptions(retry_limit=10, retry_delay=2, retry_backoff=True)
CHECK_QUEUE_OPTIONS = QueueOptions(
    policy=QueuePolicy.SHORT, retry_limit=10, retry_delay=1, retry_backoff=True
)
SCAN_QUEUE_OPTIONS = QueueOptions(policy=QueuePolicy.SHORT, retry_limit=0, expire_in=300)


TICKET_QUEUE = "sla.tickets"
"""Every ticket event the SLA service follows arrives here, in one queue."""
CONFIG_QUEUE = "sla.config"
"""``sla_policy.changed`` and ``business_calendar.changed``."""


def ticket_event(body: dict[str, Any]) -> handlers.TicketEvent:
    """The ticket event a body is, told apart by the fields only it has."""
    for field, kind in (
        ("message_id", TicketMessageAdded),
        ("new_status", TicketStatusChanged),
        ("new_priority", TicketPriorityChanged),
        ("assigned_by", TicketAssigned),
        ("created_by", TicketCreated),
    ):
        if field in body:
            return kind.model_validate(body)
    return TicketClosed.model_validate(body)


def config_event(body: dict[str, Any]) -> SlaPolicyChanged | BusinessCalendarChanged:
    if "policy_id" in body:
        return SlaPolicyChanged.model_validate(body)
    return BusinessCalendarChanged.model_validate(body)


def queue_definitions() -> list[tuple[str, QueueOptions, Sequence[str]]]:
    """Every queue the service consumes: name, definition, events it is subscribed to."""
    return [
        (TICKET_QUEUE, EVENT_QUEUE_OPTIONS, [e.name for e in TICKET_EVENTS]),
        (CONFIG_QUEUE, EVENT_QUEUE_OPTIONS, [e.name for e in CONFIG_EVENTS]),
        (CHECK_QUEUE, CHECK_QUEUE_OPTIONS, ()),
        (SCAN_QUEUE, SCAN_QUEUE_OPTIONS, ()),
    ]


def build_broker(
    settings: SlaSettings,
    *,
    units: Callable[[PgBroker], UnitFactory],
    clock: Clock | None = None,
    tracer_provider: TracerProvider | None = None,
    registry: CollectorRegistry | None = None,
    queue_metrics: QueueMetrics | None = None,
    broker: PgBroker | None = None,
) -> tuple[PgBroker, handlers.CalendarCache]:
    """The broker with every SLA subscriber; ``units(broker)`` gives what opens a unit of
    work (:class:`~insightdesk.sla.store.PgUnitFactory` on the service's pool in production,
    the in-memory twin in unit tests)."""
    middlewares: list[Any] = []
    if tracer_provider is not None:
        middlewares.append(PgTelemetryMiddleware(tracer_provider=tracer_provider))
    if registry is not None:
        middlewares.append(PgPrometheusMiddleware(registry=registry, app_name=SERVICE_NAME))
    broker = broker or PgBroker(
        settings.database_url or "",
        schema=settings.queue_schema,
        max_size=len(queue_definitions()) + 2,  # a connection per consumed queue
        queue_metrics=queue_metrics,
        graceful_timeout=settings.shutdown_timeout,
        middlewares=middlewares,
        description="InsightDesk SLA service: clocks, warnings and breaches",
    )
    now = clock or SystemClock()
    calendars = handlers.CalendarCache()
    open_unit = units(broker)
    breaches = (
        Counter("sla_breaches", "SLA breaches recorded", ["target"], registry=registry)
        if registry is not None
        else None
    )

    @broker.subscriber(
        TICKET_QUEUE,
        events=[e.name for e in TICKET_EVENTS],
        concurrency=settings.event_concurrency,
        policy=EVENT_QUEUE_OPTIONS,
        description="Ticket events: the ticket's SLA clocks follow them",
    )
    async def on_ticket(body: dict[str, Any]) -> dict[str, bool]:
        event = ticket_event(body)
        async with open_unit() as unit:
            applied = await handlers.on_ticket_event(event, unit=unit, calendars=calendars)
        return {"applied": applied}

    @broker.subscriber(
        CONFIG_QUEUE,
        events=[e.name for e in CONFIG_EVENTS],
        concurrency=1,
        policy=EVENT_QUEUE_OPTIONS,
        description="Policy and calendar changes: store the copy, re-deadline open clocks",
    )
    async def on_config(body: dict[str, Any]) -> dict[str, int]:
        event = config_event(body)
        async with open_unit() as unit:
            if isinstance(event, SlaPolicyChanged):
                count = await handlers.on_policy_changed(event, unit=unit, calendars=calendars)
            else:
                count = await handlers.on_calendar_changed(event, unit=unit, calendars=calendars)
        return {"tickets_recomputed": count}

    @broker.subscriber(
        CHECK_QUEUE,
        concurrency=settings.check_concurrency,
        policy=CHECK_QUEUE_OPTIONS,
        description="A deadline, warning or escalation of one clock version, at its instant",
    )
    async def check(body: dict[str, Any]) -> dict[str, str]:
        job = check_from_payload(body)
        async with open_unit() as unit:
            result = await handlers.run_check(job, unit=unit, calendars=calendars, now=now.now())
        if result.outcome == "not_yet" and result.retry_in is not None:
            raise SnoozeMessage(result.retry_in)
        if result.outcome == "done" and job.kind.value == "deadline" and breaches is not None:
            breaches.labels(job.target.value).inc()
        return {"outcome": result.outcome}

    @broker.subscriber(
        SCAN_QUEUE,
        concurrency=1,
        policy=SCAN_QUEUE_OPTIONS,
        description="The safety net: settle overdue deadlines and warnings no job settled",
    )
    async def scan(body: Any = None) -> dict[str, int]:
        settled = await handlers.scan(
            units=open_unit, calendars=calendars, now=now.now(), limit=settings.scan_limit
        )
        return {"settled": settled}

    return broker, calendars


@asynccontextmanager
async def sla_process(settings: SlaSettings, ctx: ProcessContext) -> AsyncIterator[AsgiFastStream]:
    """The SLA service's one process (see :mod:`insightdesk.shared.service`)."""
    dsn = settings.require_database_url()
    pool = make_pool(dsn, min_size=1, max_size=settings.db_pool_size)
    try:
        await pool.open(wait=True, timeout=30)
    except psycopg.Error as exc:
        raise DatabaseError(f"cannot connect to the database: {exc}") from exc
    try:
        queue_metrics = QueueMetrics(registry=ctx.registry)
        broker, _ = build_broker(
            settings,
            units=lambda b: PgUnitFactory(pool, b),
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
        yield make_asgi_app(
            broker,
            title="InsightDesk SLA service",
            description="SLA clocks on business time: deadlines, warnings, breaches.",
            queue_metrics=queue_metrics,
        )
    finally:
        await pool.close()
