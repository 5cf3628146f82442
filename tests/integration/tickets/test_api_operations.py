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
    org = await bootstrap(http)
    customer = await add_user(http, org, "Carla")
    ticket = await open_ticket(http, customer)
    await http.get(f"/tickets/{ticket['id']}", headers=customer.auth)

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
    lines = metrics.text.splitlines()
    # the OpenTelemetry FastAPI instrumentation's histogram: its _count is the request count
    assert "# TYPE http_server_duration_milliseconds histogram" in lines
    assert (
        "http_server_duration_milliseconds_count"
        '{http_method="POST",http_status_code="201",http_target="/organizations"} 1.0'
    ) in lines
    assert (
        "http_server_duration_milliseconds_count"
        '{http_method="GET",http_status_code="200",http_target="/tickets/{ticket_id}"} 1.0'
    ) in lines
    assert (
        "http_server_duration_milliseconds_bucket"
        '{http_method="GET",http_status_code="200",http_target="/tickets/{ticket_id}",le="+Inf"}'
        " 1.0"
    ) in lines
    assert any(
        line.startswith(
            "http_server_duration_milliseconds_sum"
            '{http_method="GET",http_status_code="200",http_target="/tickets/{ticket_id}"} '
        )
        for line in lines
    )
    http_lines = [line for line in lines if line.startswith("http_server_")]
    assert not any(ticket["id"] in line for line in http_lines)  # the template, never the path
    assert not any(path in line for line in http_lines for path in ("/healthz", "/readyz"))
    assert not any("http_host" in line or "net_host" in line for line in http_lines)
    assert "faststream_published_messages_total" in metrics.text


async def test_two_apps_in_one_process_count_their_own_requests(
    tickets_dsn: str, tracer_provider: TracerProvider
) -> None:
    settings = TicketsSettings(database_url=tickets_dsn, environment="test")
    first = create_app(settings, tracer_provider=tracer_provider)
    second = create_app(settings, tracer_provider=tracer_provider)
    count = (
        "http_server_duration_milliseconds_count"
        '{http_method="GET",http_status_code="401",http_target="/tickets/{ticket_id}"}'
    )
    try:
        async with (
            httpx.AsyncClient(transport=httpx.ASGITransport(app=first), base_url="http://a") as a,
            httpx.AsyncClient(transport=httpx.ASGITransport(app=second), base_url="http://b") as b,
        ):
            for _ in range(2):
                assert (await a.get("/tickets/7")).status_code == 401
            assert (await b.get("/tickets/8")).status_code == 401
            first_lines = (await a.get("/metrics")).text.splitlines()
            second_lines = (await b.get("/metrics")).text.splitlines()
    finally:
        await first.state.runtime.engine.dispose()
        await second.state.runtime.engine.dispose()

    assert f"{count} 2.0" in first_lines
    assert f"{count} 1.0" in second_lines


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
