"""Composition root of the email service: settings in, a running process out.

Nothing happens at import time. :func:`email_process` (run by :mod:`insightdesk.shared.service`)
picks the provider, opens the service's own pool for its ``email`` schema (the delivery log),
builds the broker with the ``email`` subscriber and yields the ASGI app (AsyncAPI ``/docs``;
the entry adds ``/healthz``, ``/readyz`` and ``/metrics``). :func:`build_broker` is the seam
tests use to run the real subscriber with a fake provider or delivery log.

The subscriber adapts the transport-free handler (:func:`insightdesk.email.handlers.send_email`)
to the queue: permanent errors reject the job into ``email-dead`` at once, a provider's
``retry-after`` becomes the delay of the next attempt, other transient errors use the queue's
exponential backoff, and a key held by another job postpones the job without using an attempt.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from faststream import BaseMiddleware
from faststream.asgi import AsgiFastStream
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry
from psycopg_pool import AsyncConnectionPool
from pydantic import ValidationError

from insightdesk.email.cleanup import purge_delivery_log
from insightdesk.email.database import (
    CLEANUP_EVENT,
    EMAIL_QUEUE,
    EMAIL_QUEUE_OPTIONS,
    MAINTENANCE_OPTIONS,
    MAINTENANCE_QUEUE,
)
from insightdesk.email.delivery import DeliveryLog
from insightdesk.email.delivery_log import PgDeliveryLog
from insightdesk.email.errors import (
    DeliveryInProgress,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from insightdesk.email.handlers import SYSTEM_CLOCK, FileSource, JobAttempt, send_email
from insightdesk.email.messages import address_domain
from insightdesk.email.providers import EmailProvider
from insightdesk.email.providers.factory import make_provider
from insightdesk.email.settings import EmailSettings
from insightdesk.email.templates import TemplateRenderer
from insightdesk.shared.clock import Clock
from insightdesk.shared.contracts import Event, MaintenanceCleanupRequested, SendEmail
from insightdesk.shared.errors import DatabaseError
from insightdesk.shared.queue import Reject, make_pool
from insightdesk.shared.queue.broker import (
    NackMessage,
    PgBroker,
    PgMessage,
    PgPrometheusMiddleware,
    PgTelemetryMiddleware,
    QueueMetrics,
    RejectMessage,
    SnoozeMessage,
    make_asgi_app,
)
from insightdesk.shared.service import ProcessContext
from insightdesk.shared.storage.factory import make_storage
from insightdesk.shared.telemetry import current_trace_id

log = logging.getLogger(__name__)

SERVICE_NAME = "email"


class RejectMalformed(BaseMiddleware):
    """A body that is not a valid ``SendEmail`` can never succeed: dead-letter it at once
    instead of retrying it five times."""

    async def consume_scope(self, call_next: Callable[[Any], Awaitable[Any]], msg: Any) -> Any:
        try:
            return await call_next(msg)
        except ValidationError as exc:
            raise Reject(f"malformed SendEmail: {exc}") from exc


def build_broker(
    settings: EmailSettings,
    *,
    provider: EmailProvider,
    delivery_log: DeliveryLog | Callable[[PgBroker], DeliveryLog],
    renderer: TemplateRenderer | None = None,
    tracer_provider: TracerProvider | None = None,
    registry: CollectorRegistry | None = None,
    queue_metrics: QueueMetrics | None = None,
    clock: Clock = SYSTEM_CLOCK,
    files: FileSource | None = None,
) -> PgBroker:
    """The broker with the ``email`` subscriber wired to ``provider``. ``delivery_log`` is the
    log itself, or a factory given the broker (the Postgres log publishes its events through
    it): see :func:`pg_delivery_log`."""
    middlewares: list[Any] = [RejectMalformed]
    if tracer_provider is not None:
        middlewares.append(PgTelemetryMiddleware(tracer_provider=tracer_provider))
    if registry is not None:
        middlewares.append(PgPrometheusMiddleware(registry=registry, app_name=SERVICE_NAME))
    broker = PgBroker(
        settings.database_url or "",
        schema=settings.queue_schema,
        max_size=max(2, min(settings.worker_concurrency + 2, 20)),
        queue_metrics=queue_metrics,
        graceful_timeout=settings.shutdown_timeout,
        middlewares=middlewares,
        description="InsightDesk email service: renders and delivers SendEmail commands",
    )
    templates = renderer or TemplateRenderer(default_locale=settings.default_locale)

    log_store = delivery_log if not callable(delivery_log) else delivery_log(broker)
    domain = settings.message_id_domain or address_domain(settings.from_address)

    @broker.subscriber(
        EMAIL_QUEUE,
        concurrency=settings.worker_concurrency,
        policy=EMAIL_QUEUE_OPTIONS,
        title="email",
        description="SendEmail: render a template and deliver it once per idempotency key",
    )
    async def deliver(command: SendEmail, message: PgMessage) -> dict[str, Any]:
        job = message.job
        attempt = JobAttempt(
            job_id=job.id,
            number=job.attempt,
            final=job.retry_count >= job.retry_limit,
            trace_id=current_trace_id(),
        )
        try:
            outcome = await send_email(
                command,
                renderer=templates,
                provider=provider,
                delivery_log=log_store,
                sender=settings.from_address,
                message_id_domain=domain,
                attempt=attempt,
                lease_seconds=settings.send_lease_seconds,
                clock=clock,
                files=files,
            )
        except PermanentDeliveryError as exc:
            log.warning("mail %s rejected: %s", command.idempotency_key, exc)
            raise RejectMessage(reason=str(exc)) from exc
        except DeliveryInProgress as exc:
            raise SnoozeMessage(exc.retry_in) from exc
        except TransientDeliveryError as exc:
            log.warning("mail %s not delivered yet: %s", command.idempotency_key, exc)
            if exc.retry_after is not None:
                raise NackMessage(delay=exc.retry_after) from exc
            raise
        log.info(
            "mail %s %s via %s (%s)",
            command.idempotency_key,
            outcome.status,
            outcome.provider,
            outcome.provider_message_id,
        )
        return outcome.as_output()

    @broker.subscriber(
        MAINTENANCE_QUEUE,
        events=[CLEANUP_EVENT],
        concurrency=1,
        policy=MAINTENANCE_OPTIONS,
        title="email-maintenance",
        description="maintenance.cleanup_requested: purge old delivery-log rows",
    )
    async def cleanup(event: MaintenanceCleanupRequested) -> dict[str, object]:
        purged = await purge_delivery_log(
            delivery_log=log_store,
            now=clock.now(),
            retention_days=settings.delivery_log_retention_days,
            batch_size=settings.cleanup_batch_size,
            max_seconds=settings.cleanup_max_seconds,
        )
        log.info("cleanup purged %d delivery-log row(s)", purged.rows)
        return purged.as_output()

    return broker


def pg_delivery_log(pool: AsyncConnectionPool[Any]) -> Callable[[PgBroker], PgDeliveryLog]:
    """The delivery log on the service's own ``pool``, publishing its events through the broker
    in the same transaction as each record."""

    def build(broker: PgBroker) -> PgDeliveryLog:
        async def publish_event(event: Event, conn: psycopg.AsyncConnection[Any]) -> object:
            return await broker.publish_event(event.name, event, conn=conn)

        return PgDeliveryLog(lambda: pool, publish_event)

    return build


@asynccontextmanager
async def email_process(
    settings: EmailSettings, ctx: ProcessContext
) -> AsyncIterator[AsgiFastStream]:
    """The email service's one process (see :mod:`insightdesk.shared.service`)."""
    dsn = settings.require_database_url()
    pool = make_pool(dsn, min_size=1, max_size=settings.db_pool_size)
    try:
        await pool.open(wait=True, timeout=30)
    except psycopg.Error as exc:
        raise DatabaseError(f"cannot connect to the database: {exc}") from exc
    provider = make_provider(settings)
    try:
        queue_metrics = QueueMetrics(registry=ctx.registry)
        broker = build_broker(
            settings,
            provider=provider,
            delivery_log=pg_delivery_log(pool),
            tracer_provider=ctx.tracer_provider,
            registry=ctx.registry,
            queue_metrics=queue_metrics,
            clock=ctx.clock,
            files=make_storage(settings.storage_config()),
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
            title="InsightDesk email service",
            description="Renders and delivers SendEmail commands from the `email` queue.",
            queue_metrics=queue_metrics,
        )
    finally:
        await provider.aclose()
        await pool.close()
