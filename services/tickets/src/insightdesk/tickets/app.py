"""Composition root: ``create_app(settings)`` builds everything the service runs on, once.

The SQLAlchemy engine (``postgresql+psycopg``), the ``PgBroker`` (publisher only; started and
stopped with the FastAPI lifespan, which also makes sure the ``email`` queue exists), tracing
(spans to ``$INSIGHTDESK_SPANS_DIR/tickets.jsonl`` and/or OTLP; an incoming ``traceparent``
continues through the request into every job it publishes), Prometheus metrics (the HTTP ones
are the OpenTelemetry FastAPI instrumentation's, on a meter provider of the app's own registry)
and the routes.
Nothing connects before the lifespan starts.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from insightdesk.shared.clock import Clock, SystemClock
from insightdesk.shared.health import Health
from insightdesk.shared.otel_metrics import HTTP_SERVER_VIEWS, prometheus_meter_provider
from insightdesk.shared.queue.broker import PgBroker, PgPrometheusMiddleware, PgTelemetryMiddleware
from insightdesk.shared.service import ProcessContext
from insightdesk.shared.telemetry import configure_tracing
from insightdesk.tickets.api import accounts, exports, operations, sla, tickets
from insightdesk.tickets.api.dependencies import Runtime
from insightdesk.tickets.api.operations import broker_answers, database_answers
from insightdesk.tickets.api.problems import install_problem_handlers
from insightdesk.tickets.database import SENDS_TO, make_engine
from insightdesk.tickets.settings import TicketsSettings

log = logging.getLogger(__name__)

SERVICE = "tickets"
VERSION = "0.1.0"
DESCRIPTION = """The InsightDesk help desk's system of record: organizations, users, tickets,
messages. Authenticate with `Authorization: Bearer <api token>`; every call acts inside the
token's organization. Each change publishes its domain event (`ticket.created`,
`ticket.message_added`, `ticket.status_changed`, `ticket.assigned`, `ticket.priority_changed`,
`ticket.closed`, `user.registered`) and its notification e-mails in the same transaction."""


@asynccontextmanager
async def api_process(settings: TicketsSettings, ctx: ProcessContext) -> AsyncIterator[FastAPI]:
    """The ``api`` process for :mod:`insightdesk.shared.service`: the app on the entry's tracing,
    clock, readiness and metrics registry (the pools open and close with the app's lifespan)."""
    yield create_app(
        settings,
        tracer_provider=ctx.tracer_provider,
        clock=ctx.clock,
        health=ctx.health,
        registry=ctx.registry,
    )


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
    clock: Clock | None = None,
    health: Health | None = None,
    registry: CollectorRegistry | None = None,
) -> FastAPI:
    """The tickets ASGI app. ``tracer_provider`` replaces the one built from the settings
    (tests pass their own); ``clock`` gives each request its ``now``; ``health`` gets the
    readiness checks (database, broker) and ``registry`` the metrics."""
    dsn = settings.require_database_url()
    owns_provider = tracer_provider is None
    provider = tracer_provider or configure_tracing(
        SERVICE, spans_file=settings.spans_file, otlp_endpoint=settings.otlp_endpoint
    )
    registry = registry if registry is not None else CollectorRegistry()
    health = health if health is not None else Health(check_timeout=settings.ready_timeout)
    engine = make_engine(
        dsn, pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow
    )
    broker = PgBroker(
        dsn,
        schema=settings.queue_schema,
        min_size=1,
        max_size=2,  # ensure_queue and readiness only: publishes use the request's connection
        middlewares=[
            PgTelemetryMiddleware(tracer_provider=provider),
            PgPrometheusMiddleware(registry=registry, app_name=SERVICE),
        ],
        graceful_timeout=settings.shutdown_timeout,
    )
    runtime = Runtime(
        settings=settings,
        engine=engine,
        sessions=async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False),
        broker=broker,
        registry=registry,
        clock=clock or SystemClock(),
        health=health,
    )
    health.add_check("database", lambda: database_answers(engine))
    health.add_check("broker", lambda: broker_answers(broker, settings.ready_timeout))

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
    app.include_router(accounts.organizations)
    app.include_router(tickets.router)
    app.include_router(exports.router)
    app.include_router(sla.router)
    FastAPIInstrumentor.instrument_app(  # spans, and the HTTP metrics /metrics serves
        app,
        tracer_provider=provider,
        meter_provider=prometheus_meter_provider(registry, views=HTTP_SERVER_VIEWS),
        excluded_urls="/healthz,/readyz,/metrics",
    )
    return app
