"""Fixtures for the tickets service against real PostgreSQL: the migrated database, probe
queues subscribed to every event, the app (lifespan running) and an HTTP client on it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from insightdesk.shared.queue import QueueClient
from insightdesk.tickets.app import create_app
from insightdesk.tickets.database import migrate_database
from insightdesk.tickets.settings import TicketsSettings

from .desk import OPERATOR_TOKEN, Probes

AppFactory = Callable[..., AbstractAsyncContextManager[FastAPI]]


@pytest.fixture
async def tickets_dsn(db_dsn: str) -> str:
    """The test database with the tickets schema migrated and the email queue created."""
    await migrate_database(db_dsn)
    return db_dsn


@pytest.fixture
async def probes(client: QueueClient, tickets_dsn: str) -> Probes:
    probes = Probes(client)
    await probes.install()
    return probes


@pytest.fixture
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracer_provider(spans: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    return provider


@pytest.fixture
def make_app(tickets_dsn: str, tracer_provider: TracerProvider) -> AppFactory:
    """Build the app with settings overrides and run its lifespan."""

    @asynccontextmanager
    async def running(**overrides: Any) -> AsyncIterator[FastAPI]:
        overrides.setdefault("operator_token", OPERATOR_TOKEN)
        settings = TicketsSettings(database_url=tickets_dsn, environment="test", **overrides)
        app = create_app(settings, tracer_provider=tracer_provider)
        async with app.router.lifespan_context(app):
            yield app

    return running


@pytest.fixture
async def app(make_app: AppFactory, probes: Probes) -> AsyncIterator[FastAPI]:
    async with make_app() as app:
        yield app


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://tickets.test") as client:
        yield client
