"""OpenTelemetry metrics on a process's own Prometheus registry: names, types, labels, buckets,
the HTTP label allow-list, and separate counts for separate registries."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest, registry

from insightdesk.shared.otel_metrics import (
    HTTP_SERVER_VIEWS,
    prometheus_meter_provider,
    prometheus_name,
)


def scrape(reg: CollectorRegistry) -> list[str]:
    return generate_latest(reg).decode().splitlines()


def test_names_take_the_unit_and_drop_annotations() -> None:
    assert prometheus_name("http.server.duration", "ms") == "http_server_duration_milliseconds"
    assert prometheus_name("http.server.request.duration", "s") == (
        "http_server_request_duration_seconds"
    )
    assert prometheus_name("http.server.response.size", "By") == "http_server_response_size_bytes"
    assert prometheus_name("http.server.active_requests", "{request}") == (
        "http_server_active_requests"
    )
    assert prometheus_name("queue.job.duration_seconds", "s") == "queue_job_duration_seconds"
    assert prometheus_name("cache.hit", "1") == "cache_hit"
    assert prometheus_name("odd-name/x", "") == "odd_name_x"


def test_counters_gauges_and_histograms_read_at_each_scrape() -> None:
    reg = CollectorRegistry()
    meter = prometheus_meter_provider(reg).get_meter("t")
    requests = meter.create_counter("app.requests", unit="{request}", description="Requests.")
    active = meter.create_up_down_counter("app.active", description="In flight.")
    latency = meter.create_histogram(
        "app.latency", unit="s", explicit_bucket_boundaries_advisory=[0.1, 1.0]
    )

    requests.add(2, {"http.route": "/a/{id}"})
    active.add(3)
    active.add(-1)
    latency.record(0.05, {"http.route": "/a/{id}"})
    latency.record(0.5, {"http.route": "/a/{id}"})
    latency.record(7, {"http.route": "/a/{id}"})
    first = scrape(reg)
    requests.add(1, {"http.route": "/a/{id}"})
    second = scrape(reg)

    assert "# TYPE app_requests_total counter" in first
    assert 'app_requests_total{http_route="/a/{id}"} 2.0' in first
    assert 'app_requests_total{http_route="/a/{id}"} 3.0' in second  # cumulative, not per scrape
    assert "# TYPE app_active gauge" in first
    assert "app_active 2.0" in first
    assert "# TYPE app_latency_seconds histogram" in first
    assert [line for line in first if line.startswith("app_latency_seconds")] == [
        'app_latency_seconds_bucket{http_route="/a/{id}",le="0.1"} 1.0',
        'app_latency_seconds_bucket{http_route="/a/{id}",le="1.0"} 2.0',
        'app_latency_seconds_bucket{http_route="/a/{id}",le="+Inf"} 3.0',
        'app_latency_seconds_count{http_route="/a/{id}"} 3.0',
        'app_latency_seconds_sum{http_route="/a/{id}"} 7.55',
    ]


def test_http_server_instruments_keep_only_method_route_and_status() -> None:
    reg = CollectorRegistry()
    meter = prometheus_meter_provider(reg, views=HTTP_SERVER_VIEWS).get_meter("asgi")
    duration = meter.create_histogram("http.server.duration", unit="ms")
    other = meter.create_counter("app.calls")
    request: dict[str, str | int] = {
        "http.method": "GET",
        "http.target": "/tickets/{ticket_id}",
        "http.status_code": 200,
        "http.host": "attacker-chosen.example",
        "http.server_name": "attacker-chosen.example",
        "net.host.port": 8000,
        "http.scheme": "http",
        "http.flavor": "1.1",
    }

    duration.record(12, request)
    other.add(1, {"http.host": "kept.example"})  # the view is for http.server.* only
    text = scrape(reg)

    assert (
        "http_server_duration_milliseconds_count"
        '{http_method="GET",http_status_code="200",http_target="/tickets/{ticket_id}"} 1.0'
    ) in text
    assert 'app_calls_total{http_host="kept.example"} 1.0' in text
    assert not any("attacker-chosen" in line or "net_host_port" in line for line in text)


def test_two_registries_count_apart_and_the_global_one_gets_nothing() -> None:
    first, second = CollectorRegistry(), CollectorRegistry()
    a = prometheus_meter_provider(first).get_meter("t").create_counter("app.requests")
    b = prometheus_meter_provider(second).get_meter("t").create_counter("app.requests")

    a.add(2)
    b.add(5)

    assert "app_requests_total 2.0" in scrape(first)
    assert "app_requests_total 5.0" in scrape(second)
    assert b"app_requests" not in generate_latest(registry.REGISTRY)


def test_a_registry_with_nothing_recorded_scrapes_empty() -> None:
    reg = CollectorRegistry()
    prometheus_meter_provider(reg)

    assert scrape(reg) == []
