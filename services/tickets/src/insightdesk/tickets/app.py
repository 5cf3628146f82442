"""Composition root: ``create_app(settings)`` builds everything the service runs on, once.

The SQLAlchemy engine (``postgresql+psycopg``), the ``PgBroker`` (publisher only; started and
stopped with the FastAPI lifespan, which also makes sure the ``email`` queue exists), tracing
(spans to ``$INSIGHTDESK_SPANS_DIR/tickets.jsonl`` and/or OTLP; an incoming ``traceparent``
continues through the request into every job it publishes), Prometheus metrics and the routes.
Nothing connects before the lifespan starts.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from insightdesk.shared.queue.broker import PgBroker, PgPrometheusMiddleware, PgTelemetryMiddleware
from insightdesk.shared.telemetry import configure_tracing
from insightdesk.tickets.api import accounts, operations, tickets
from insightdesk.tickets.api.dependencies import Runtime
from insightdesk.tickets.api.problems import install_problem_handlers
from insightdesk.tickets.database import SENDS_TO, make_engine
from insightdesk.tickets.metrics import HttpMetrics
from insightdesk.tickets.settings import TicketsSettings
from insightdesk.tickets.subscribers import subscribe_notification_flush

log = logging.getLogger(__name__)

SERVICE = "tickets"
VERSION = "0.1.0"
DESCRIPTION = """The InsightDesk help desk's system of record: organizations, users, tickets,
messages. Authenticate with `Authorization: Bearer <api token>`; every call acts inside the
token's organization. Each change publishes its domain event (`ticket.created`,
`ticket.message_added`, `ticket.status_changed`, `ticket.assigned`, `ticket.priority_changed`,
`ticket.closed`, `user.registered`) and its notification e-mails in the same transaction."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def bootstrap_served(settings: TicketsSettings) -> bool:
    """Whether ``POST /organizations`` is served: in development always (when allowed);
    elsewhere only with a real operator token (a placeholder stops the start)."""
    if not settings.allow_bootstrap:
        return False
    if settings.environment == "development":
        return True
    if settings.operator_token is None:
        log.warning("POST /organizations is off: set TICKETS_OPERATOR_TOKEN to serve it")
        return False
    settings.check_secret("TICKETS_OPERATOR_TOKEN", settings.operator_token)
    return True


def create_app(
    settings: TicketsSettings,
    *,
    tracer_provider: TracerProvider | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> FastAPI:
    """The tickets ASGI app. ``tracer_provider`` replaces the one built from the settings
    (tests pass their own); ``clock`` gives each request its ``now``."""
    dsn = settings.require_database_url()
    owns_provider = tracer_provider is None
    provider = tracer_provider or configure_tracing(
        SERVICE, spans_file=settings.spans_file, otlp_endpoint=settings.otlp_endpoint
    )
    registry = CollectorRegistry()
    engine = make_engine(
        dsn, pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow
    )
    broker = PgBroker(
        dsn,
        schema=settings.queue_schema,
        min_size=1,
        max_size=4,  # queues, readiness and the flush consumer: publishes use the request's own
        middlewares=[
            PgTelemetryMiddleware(tracer_provider=provider),
            PgPrometheusMiddleware(registry=registry, app_name=SERVICE),
        ],
        graceful_timeout=settings.shutdown_timeout,
    )
    sessions = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
    # the ticket-notifications consumer runs here until the tickets worker process exists
    subscribe_notification_flush(broker, sessions=sessions, settings=settings)
    runtime = Runtime(
        settings=settings,
        engine=engine,
        sessions=sessions,
        broker=broker,
        registry=registry,
        clock=clock,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            await broker.start()
            for queue in SENDS_TO:
                await broker.client.ensure_queue(queue)
            yield
        finally:
            await broker.stop()
            await engine.dispose()
            if owns_provider:
                provider.shutdown()

    app = FastAPIOffline(  # /docs and /redoc with their assets from the package, no CDN
        title="InsightDesk tickets", version=VERSION, description=DESCRIPTION, lifespan=lifespan
    )
    app.state.runtime = runtime
    install_problem_handlers(app)
    app.include_router(operations.router)
    if bootstrap_served(settings):
        app.include_router(accounts.bootstrap)
    app.include_router(accounts.users)
    app.include_router(tickets.router)
    app.add_middleware(HttpMetrics, registry=registry)
    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=provider, excluded_urls="/healthz,/readyz,/metrics"
    )
    return app
