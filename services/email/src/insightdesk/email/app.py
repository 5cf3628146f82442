"""Composition root of the email service: settings in, a runnable ASGI app out.

Nothing happens at import time. :func:`create_app` configures tracing, picks the provider,
builds the broker with the ``email`` subscriber and wraps it in the ASGI app that serves
``/healthz``, ``/readyz``, ``/metrics`` and ``/docs``. :func:`build_broker` is the seam tests
use to run the real subscriber with a fake provider or delivery log.

The subscriber adapts the transport-free handler (:func:`insightdesk.email.handlers.send_email`)
to the queue: permanent errors reject the job into ``email-dead`` at once, a provider's
``retry-after`` becomes the delay of the next attempt, other transient errors use the queue's
exponential backoff, and a key held by another job postpones the job without using an attempt.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import psycopg
from faststream import BaseMiddleware
from faststream.asgi import AsgiFastStream
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from insightdesk.email.database import (
    EMAIL_QUEUE,
    EMAIL_QUEUE_OPTIONS,
    migrate_email_schema,
)
from insightdesk.email.delivery import DeliveryLog
from insightdesk.email.delivery_log import PgDeliveryLog
from insightdesk.email.errors import (
    DeliveryInProgress,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from insightdesk.email.handlers import JobAttempt, send_email, utc_now
from insightdesk.email.messages import address_domain
from insightdesk.email.providers import EmailProvider
from insightdesk.email.providers.factory import make_provider
from insightdesk.email.settings import EmailSettings
from insightdesk.email.templates import TemplateRenderer
from insightdesk.shared.contracts import Event, SendEmail
from insightdesk.shared.queue import Reject
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
from insightdesk.shared.telemetry import configure_tracing, current_trace_id

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
    renderer: TemplateRenderer | None = None,
    delivery_log: DeliveryLog | None = None,
    tracer_provider: TracerProvider | None = None,
    registry: CollectorRegistry | None = None,
    queue_metrics: QueueMetrics | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> PgBroker:
    """The broker with the ``email`` subscriber wired to ``provider``."""
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

    async def publish_event(event: Event, conn: psycopg.AsyncConnection[Any]) -> object:
        return await broker.publish_event(event.name, event, conn=conn)

    log_store = delivery_log or PgDeliveryLog(lambda: broker.client.pool, publish_event)
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

    return broker


def create_app(settings: EmailSettings) -> AsgiFastStream:
    """The email service as an ASGI app (run it with uvicorn or ``faststream run``)."""
    tracer_provider = configure_tracing(
        SERVICE_NAME, spans_file=settings.spans_file, otlp_endpoint=settings.otlp_endpoint
    )
    registry = CollectorRegistry()
    queue_metrics = QueueMetrics(registry=registry)
    provider = make_provider(settings)
    broker = build_broker(
        settings,
        provider=provider,
        tracer_provider=tracer_provider,
        registry=registry,
        queue_metrics=queue_metrics,
    )
    dsn = settings.require_database_url()

    async def migrate_own_schema() -> None:
        # cheap when up to date; keeps a service started without `migrate` working
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            await migrate_email_schema(conn)

    async def release_resources() -> None:
        await provider.aclose()
        tracer_provider.shutdown()

    return make_asgi_app(
        broker,
        title="InsightDesk email service",
        description="Renders and delivers SendEmail commands from the `email` queue.",
        registry=registry,
        queue_metrics=queue_metrics,
        on_startup=[migrate_own_schema],
        after_shutdown=[release_resources],
    )


def app_from_environment() -> AsgiFastStream:
    """``faststream run insightdesk.email.app:app_from_environment --factory``: the settings
    come from the environment, as with ``python -m insightdesk.email``."""
    return create_app(EmailSettings())
