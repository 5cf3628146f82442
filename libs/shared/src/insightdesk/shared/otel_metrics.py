"""OpenTelemetry metrics served on a process's own Prometheus registry.

:func:`prometheus_meter_provider` gives an SDK ``MeterProvider`` whose numbers a scrape of the
given ``CollectorRegistry`` reads: the registry holds a :class:`OtelCollector` that asks the
provider's pull reader for a fresh collection at each scrape (cumulative temporality) and turns it
into Prometheus families. Nothing global is touched — neither the OpenTelemetry meter provider
nor ``prometheus_client.REGISTRY`` — so several apps in one process keep separate counts.

Names follow the usual OpenTelemetry-to-Prometheus mapping: characters outside ``[a-zA-Z0-9_:]``
become ``_``, the unit is appended (``s`` → ``_seconds``, ``ms`` → ``_milliseconds``, ``By`` →
``_bytes``; annotations like ``{request}`` are dropped), monotonic sums are counters (``_total``),
other sums and gauges are gauges, explicit-bucket histograms are histograms. Attribute keys become
labels the same way (``http.status_code`` → ``http_status_code``).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    Gauge,
    Histogram,
    HistogramDataPoint,
    MetricReader,
    MetricsData,
    NumberDataPoint,
    Sum,
)
from opentelemetry.sdk.metrics.view import View
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

UNITS = {"s": "seconds", "ms": "milliseconds", "By": "bytes", "1": ""}
_INVALID = re.compile(r"[^a-zA-Z0-9_:]")

HTTP_SERVER_LABELS = frozenset(
    {
        # the default (pre-stable) HTTP semantic conventions; http.target is the route template
        "http.method",
        "http.target",
        "http.status_code",
        # the stable ones (OTEL_SEMCONV_STABILITY_OPT_IN=http)
        "http.request.method",
        "http.route",
        "http.response.status_code",
        "error.type",
    }
)
HTTP_SERVER_VIEWS = (View(instrument_name="http.server.*", attribute_keys=set(HTTP_SERVER_LABELS)),)
"""Keep the OpenTelemetry HTTP server instruments to method, route template and status: the
host, server name and port they also carry come from the request and would let clients grow
the label set without bound."""


class PullReader(MetricReader):
    """Collects only when asked (at each scrape); keeps nothing between scrapes."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._data: MetricsData | None = None

    def read(self) -> MetricsData | None:
        """A fresh collection of every instrument of the provider (None before it is attached)."""
        with self._lock:
            self._data = None
            self.collect()
            data, self._data = self._data, None
            return data

    def _receive_metrics(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> None:
        self._data = metrics_data

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        return None


class OtelCollector(Collector):
    """The Prometheus view of what a :class:`PullReader` reads."""

    def __init__(self, reader: PullReader) -> None:
        self.reader = reader

    def collect(self) -> Iterator[Metric]:
        data = self.reader.read()
        if data is None:
            return
        families: dict[str, Metric] = {}
        for resource_metrics in data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    _add(families, metric.name, metric.unit, metric.description, metric.data)
        yield from families.values()


def prometheus_meter_provider(
    registry: CollectorRegistry, *, views: Sequence[View] = ()
) -> MeterProvider:
    """A meter provider whose metrics a scrape of ``registry`` serves (``views`` shape them)."""
    reader = PullReader()
    provider = MeterProvider(metric_readers=[reader], views=views, shutdown_on_exit=False)
    registry.register(OtelCollector(reader))
    return provider


def prometheus_name(name: str, unit: str | None) -> str:
    """``http.server.duration`` in ``ms`` → ``http_server_duration_milliseconds``."""
    base = _INVALID.sub("_", name)
    suffix = _unit_suffix(unit)
    if suffix and not base.endswith(f"_{suffix}"):
        base = f"{base}_{suffix}"
    return base


def _unit_suffix(unit: str | None) -> str:
    if not unit:
        return ""
    plain = re.sub(r"\{[^}]*\}", "", unit).strip()
    return _INVALID.sub("_", UNITS.get(plain, plain))


def _labels(attributes: Mapping[str, Any] | None) -> dict[str, str]:
    return {_INVALID.sub("_", key): str(value) for key, value in (attributes or {}).items()}


def _add(
    families: dict[str, Metric], name: str, unit: str | None, doc: str | None, data: Any
) -> None:
    if isinstance(data, Sum) and data.is_monotonic:
        kind, base = "counter", prometheus_name(name, unit).removesuffix("_total")
    elif isinstance(data, Sum | Gauge):
        kind, base = "gauge", prometheus_name(name, unit)
    elif isinstance(data, Histogram):
        kind, base = "histogram", prometheus_name(name, unit)
    else:  # exponential histograms: not configured by any view here
        return
    family = families.get(base)
    if family is None:
        family = families[base] = Metric(base, doc or name, kind)
    elif family.type != kind:  # the same name from another scope with another type: first wins
        return
    if kind == "histogram":
        _add_histogram(family, base, data.data_points)
    else:
        sample = f"{base}_total" if kind == "counter" else base
        for point in data.data_points:
            assert isinstance(point, NumberDataPoint)
            family.add_sample(sample, _labels(point.attributes), float(point.value))


def _add_histogram(family: Metric, base: str, points: Iterable[HistogramDataPoint]) -> None:
    for point in points:
        labels = _labels(point.attributes)
        cumulative = 0
        bounds = [*(repr(float(b)) for b in point.explicit_bounds), "+Inf"]
        for bound, count in zip(bounds, point.bucket_counts, strict=True):
            cumulative += count
            family.add_sample(f"{base}_bucket", {**labels, "le": bound}, float(cumulative))
        family.add_sample(f"{base}_count", labels, float(point.count))
        family.add_sample(f"{base}_sum", labels, float(point.sum))
