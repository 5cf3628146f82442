"""PgBroker telemetry against real PostgreSQL: trace context through the job's headers, queue
metrics for OpenTelemetry and Prometheus."""

from __future__ import annotations

from typing import Any

from faststream.opentelemetry import CurrentSpan
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client import CollectorRegistry, generate_latest

from insightdesk.shared.queue import JobState, QueueClient
from insightdesk.shared.queue.broker import (
    PgBroker,
    PgMessage,
    PgPrometheusMiddleware,
    PgTelemetryMiddleware,
    QueueMetrics,
    QueueOptions,
)

from .helpers import wait_for_state, wait_until


def _points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    data = reader.get_metrics_data()
    found: dict[str, list[Any]] = {}
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                found.setdefault(metric.name, []).extend(metric.data.data_points)
    return found


async def test_a_span_started_by_a_request_continues_in_the_consumer(
    db_dsn: str, client: QueueClient
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    broker = PgBroker(
        db_dsn, middlewares=[PgTelemetryMiddleware(tracer_provider=provider)], logger=None
    )
    seen: list[int] = []

    @broker.subscriber("traced")
    async def handle(body: dict[str, Any], span: CurrentSpan, message: PgMessage) -> None:
        assert "traceparent" in message.headers
        seen.append(span.get_span_context().trace_id)

    try:
        await broker.start()
        with provider.get_tracer("http").start_as_current_span("POST /tickets") as request:
            job_id = await broker.publish({"ticket": 1}, "traced")
        assert job_id is not None
        await wait_for_state(client, job_id, JobState.COMPLETED)
    finally:
        await broker.stop()
    trace_id = request.get_span_context().trace_id
    assert seen == [trace_id]
    info = await client.get_job(job_id)
    assert info.headers is not None and "traceparent" in info.headers
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert spans["traced process"].kind == SpanKind.CONSUMER
    assert spans["traced publish"].kind == SpanKind.PRODUCER
    assert {s.context.trace_id for s in spans.values()} == {trace_id}
    assert spans["traced process"].attributes is not None
    assert spans["traced process"].attributes["messaging.system"] == "postgresql"
    assert spans["traced process"].attributes["messaging.message.id"] == str(job_id)


async def test_queue_metrics_count_outcomes_and_read_depth_and_age(
    db_dsn: str, client: QueueClient
) -> None:
    reader = InMemoryMetricReader()
    registry = CollectorRegistry()
    metrics = QueueMetrics(meter_provider=MeterProvider(metric_readers=[reader]), registry=registry)
    broker = PgBroker(
        db_dsn,
        queue_metrics=metrics,
        middlewares=[PgPrometheusMiddleware(registry=registry, app_name="tests")],
        logger=None,
    )

    @broker.subscriber("m", policy=QueueOptions(retry_limit=1))
    async def handle(body: dict[str, bool]) -> None:
        if body["fail"]:
            raise RuntimeError("always")

    try:
        await broker.start()
        await client.create_queue("backlog")
        await client.send_many("backlog", [{}, {}])
        ok = await broker.publish({"fail": False}, "m")
        bad = await broker.publish({"fail": True}, "m")
        assert ok is not None and bad is not None
        await wait_for_state(client, ok, JobState.COMPLETED)
        await wait_for_state(client, bad, JobState.FAILED, timeout=15)

        async def counted() -> bool:
            return sum(metrics.counts.values()) == 3

        await wait_until(counted)
        await metrics.refresh(client)
    finally:
        await broker.stop()

    points = _points(reader)
    by_outcome = {
        p.attributes["outcome"]: p.value
        for p in points["queue.jobs.processed"]
        if p.attributes["queue"] == "m"
    }
    assert by_outcome == {"completed": 1, "retried": 1, "failed": 1}
    assert [p.value for p in points["queue.jobs.retried"]] == [1]
    assert [p.value for p in points["queue.jobs.failed"]] == [1]
    assert sum(p.count for p in points["queue.job.duration"]) == 3
    depth = {p.attributes["queue"]: p.value for p in points["queue.depth"]}
    assert depth["backlog"] == 2 and depth["m"] == 0
    ages = {p.attributes["queue"]: p.value for p in points["queue.oldest_ready_age"]}
    assert ages["backlog"] >= 0

    text = generate_latest(registry).decode()
    assert 'insightdesk_queue_depth{queue="backlog"} 2.0' in text
    assert 'insightdesk_queue_jobs_processed_total{outcome="failed",queue="m"} 1.0' in text
    assert 'insightdesk_queue_job_duration_seconds_count{queue="m"} 3.0' in text
    # FastStream's own Prometheus middleware, fed by our settings provider
    assert "faststream_received_messages_total" in text
    assert 'handler="m"' in text
