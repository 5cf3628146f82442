"""Per-queue job metrics, for OpenTelemetry and Prometheus.

* counted by the subscribers as jobs finish: processed (by outcome: completed, retried, failed,
  snoozed), retried, failed (dead-lettered or rejected), and the handling duration;
* read from the database every ``refresh_interval`` seconds (one statement for all queues):
  queue depth (ready jobs) and the age of the oldest ready job.

OpenTelemetry gets instruments on the given meter provider (the global one by default).
Given a ``registry``, Prometheus gets the same numbers through a collector, next to what
FastStream's ``PrometheusMiddleware`` (see :class:`PgPrometheusMiddleware`) records.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from insightdesk.shared.errors import QueueError

if TYPE_CHECKING:
    from opentelemetry.metrics import Meter, MeterProvider
    from prometheus_client import CollectorRegistry

    from insightdesk.shared.queue.client import QueueClient
    from insightdesk.shared.queue.jobs import Job, QueueStats

log = logging.getLogger(__name__)

OUTCOMES = ("completed", "retried", "failed", "snoozed")
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class _Histogram:
    """Cumulative bucket counts of one queue's durations (for the Prometheus collector)."""

    __slots__ = ("buckets", "count", "total")

    def __init__(self) -> None:
        self.buckets = [0] * (len(DURATION_BUCKETS) + 1)
        self.count = 0
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.count += 1
        self.total += value
        for i, bound in enumerate(DURATION_BUCKETS):
            if value <= bound:
                self.buckets[i] += 1
                return
        self.buckets[-1] += 1


class QueueMetrics:
    def __init__(
        self,
        *,
        meter_provider: MeterProvider | None = None,
        meter: Meter | None = None,
        registry: CollectorRegistry | None = None,
        namespace: str = "insightdesk_queue",
        refresh_interval: float = 15.0,
    ) -> None:
        meter = meter or metrics.get_meter(
            "insightdesk.shared.queue", meter_provider=meter_provider
        )
        self.refresh_interval = refresh_interval
        self.namespace = namespace
        self.stats: dict[str, QueueStats] = {}
        self.counts: dict[tuple[str, str], int] = {}
        self.durations: dict[str, _Histogram] = {}
        self._attrs: dict[tuple[str, str], dict[str, str]] = {}
        self._processed = meter.create_counter(
            "queue.jobs.processed", unit="{job}", description="Jobs handled, by outcome."
        )
        self._retried = meter.create_counter(
            "queue.jobs.retried", unit="{job}", description="Failed attempts that will be retried."
        )
        self._failed = meter.create_counter(
            "queue.jobs.failed",
            unit="{job}",
            description="Jobs failed for good (no attempt left, or rejected): dead-lettered.",
        )
        self._duration = meter.create_histogram(
            "queue.job.duration", unit="s", description="Time a handler spent on a job."
        )
        meter.create_observable_gauge(
            "queue.depth",
            callbacks=[self._observe_depth],
            unit="{job}",
            description="Jobs ready to run now.",
        )
        meter.create_observable_gauge(
            "queue.oldest_ready_age",
            callbacks=[self._observe_age],
            unit="s",
            description="How long the oldest ready job has waited.",
        )
        if registry is not None:
            registry.register(_Collector(self))

    # ------------------------------------------------------------------ counting

    def record_job(self, job: Job, outcome: str, duration: float) -> None:
        """The engine worker's ``on_job_done`` hook."""
        self.record(job.queue, outcome, duration)

    def record(self, queue: str, outcome: str, duration: float) -> None:
        """One job handled by a subscriber of ``queue``."""
        key = (queue, outcome)
        attrs = self._attrs.get(key)
        if attrs is None:
            attrs = self._attrs[key] = {"queue": queue, "outcome": outcome}
        self.counts[key] = self.counts.get(key, 0) + 1
        histogram = self.durations.get(queue)
        if histogram is None:
            histogram = self.durations[queue] = _Histogram()
        histogram.observe(duration)
        self._processed.add(1, attrs)
        if outcome == "retried":
            self._retried.add(1, attrs)
        elif outcome == "failed":
            self._failed.add(1, attrs)
        self._duration.record(duration, attrs)

    # ------------------------------------------------------------------ sampling the database

    async def refresh(self, client: QueueClient, queues: Iterable[str] | None = None) -> None:
        """Read depth and oldest-ready age of ``queues`` (all queues when None)."""
        wanted = None if queues is None else set(queues)
        rows = await client.stats()
        self.stats = {s.name: s for s in rows if wanted is None or s.name in wanted}

    def start(self, client: QueueClient, queues: Iterable[str] | None = None) -> asyncio.Task[None]:
        """Refresh in the background until the returned task is cancelled."""
        names = None if queues is None else list(queues)

        async def loop() -> None:
            while True:
                try:
                    await self.refresh(client, names)
                except (QueueError, OSError) as exc:
                    log.warning("could not read queue statistics: %s", exc)
                await asyncio.sleep(self.refresh_interval)

        return asyncio.create_task(loop(), name="queue-metrics")

    def _observe_depth(self, _options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(s.ready, {"queue": name}) for name, s in self.stats.items()]

    def _observe_age(self, _options: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(float(s.oldest_ready_age), {"queue": name})
            for name, s in self.stats.items()
        ]


class _Collector(Collector):
    """Prometheus view of a :class:`QueueMetrics`."""

    def __init__(self, source: QueueMetrics) -> None:
        self.source = source

    def collect(self) -> Iterator[Any]:
        ns = self.source.namespace
        processed = CounterMetricFamily(
            f"{ns}_jobs_processed", "Jobs handled, by outcome.", labels=["queue", "outcome"]
        )
        for (queue, outcome), n in sorted(self.source.counts.items()):
            processed.add_metric([queue, outcome], n)
        yield processed
        duration = HistogramMetricFamily(
            f"{ns}_job_duration_seconds", "Time a handler spent on a job.", labels=["queue"]
        )
        for queue, h in sorted(self.source.durations.items()):
            cumulative, buckets = 0, []
            for bound, n in zip((*DURATION_BUCKETS, float("inf")), h.buckets, strict=True):
                cumulative += n
                buckets.append(("+Inf" if bound == float("inf") else str(bound), cumulative))
            duration.add_metric([queue], buckets, h.total)
        yield duration
        depth = GaugeMetricFamily(f"{ns}_depth", "Jobs ready to run now.", labels=["queue"])
        age = GaugeMetricFamily(
            f"{ns}_oldest_ready_age_seconds",
            "How long the oldest ready job has waited.",
            labels=["queue"],
        )
        for name, s in sorted(self.source.stats.items()):
            depth.add_metric([name], s.ready)
            age.add_metric([name], float(s.oldest_ready_age))
        yield depth
        yield age
