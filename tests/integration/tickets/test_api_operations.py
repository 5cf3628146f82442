"""Trace context from the request into the jobs; health, readiness, metrics and docs."""

from __future__ import annotations

import httpx
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from insightdesk.tickets.app import create_app
from insightdesk.tickets.settings import TicketsSettings

from .desk import Probes, add_user, bootstrap, open_ticket

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def trace_of(headers: dict[str, object] | None) -> str:
    assert headers is not None
    traceparent = headers["traceparent"]
    assert isinstance(traceparent, str)
    return traceparent.split("-")[1]


async def test_an_incoming_traceparent_continues_into_the_published_jobs(
    http: httpx.AsyncClient, probes: Probes, spans: InMemorySpanExporter
) -> None:
    org = await bootstrap(http)
    agent = await add_user(http, org, "Arne", "agent")
    customer = await add_user(http, org, "Carla")
    ticket = await open_ticket(http, customer)

    response = await http.post(
        f"/tickets/{ticket['id']}/messages",
        json={"body": "On it."},
        headers={**agent.auth, "traceparent": TRACEPARENT},
    )

    assert response.status_code == 201
    [event_job] = await probes.jobs("ticket.message_added")
    [email_job] = await probes.client.find_jobs("ticket-notifications")  # the held update
    assert trace_of(event_job.headers) == TRACE_ID
    assert trace_of(email_job.headers) == TRACE_ID
    traced = [s for s in spans.get_finished_spans() if f"{s.context.trace_id:032x}" == TRACE_ID]
    kinds = {s.kind for s in traced}
    assert {SpanKind.SERVER, SpanKind.PRODUCER} <= kinds
    # requests without a traceparent start their own trace, not this one
    created = await probes.jobs("ticket.created")
    assert trace_of(created[0].headers) != TRACE_ID


async def test_health_readiness_metrics_and_docs(http: httpx.AsyncClient) -> None:
    await bootstrap(http)

    health = await http.get("/healthz")
    ready = await http.get("/readyz")
    docs = await http.get("/docs")
    spec = (await http.get("/openapi.json")).json()
    metrics = await http.get("/metrics")

    assert (health.status_code, health.text) == (200, "ok")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "database": "ok", "broker": "ok"}
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    assert {
        "/organizations",
        "/users",
        "/users/me",
        "/tickets",
        "/tickets/{ticket_id}",
        "/tickets/{ticket_id}/messages",
        "/tickets/{ticket_id}/status",
        "/tickets/{ticket_id}/assignee",
        "/tickets/{ticket_id}/priority",
    } <= set(spec["paths"])
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
    assert metrics.status_code == 200
    text = metrics.text
    assert (
        'insightdesk_http_requests_total{method="POST",route="/organizations",status="201"} 1.0'
        in text
    )
    assert "faststream_published_messages_total" in text


async def test_not_ready_until_the_broker_has_started(
    tickets_dsn: str, tracer_provider: TracerProvider
) -> None:
    settings = TicketsSettings(database_url=tickets_dsn, environment="test")
    app = create_app(settings, tracer_provider=tracer_provider)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            response = await http.get("/readyz")
    finally:
        await app.state.runtime.engine.dispose()

    assert response.status_code == 503
    assert response.json() == {"status": "not ready", "database": "ok", "broker": "unavailable"}
