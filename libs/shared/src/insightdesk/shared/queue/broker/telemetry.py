"""FastStream's tracing and Prometheus middlewares, told how to read jobs and publish commands.

Tracing: the publishing side injects W3C ``traceparent``/``tracestate`` (and baggage) into the
job's headers, which are stored with the job; the consuming side extracts them, so a span
started by an HTTP request continues in whichever process runs the job.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from faststream.opentelemetry import TelemetryMiddleware
from faststream.opentelemetry.consts import MESSAGING_DESTINATION_PUBLISH_NAME
from faststream.prometheus import ConsumeAttrs, PrometheusMiddleware
from opentelemetry.semconv.trace import SpanAttributes

from insightdesk.shared.queue.broker._faststream import EMPTY
from insightdesk.shared.queue.broker.command import PgPublishCommand
from insightdesk.shared.queue.broker.message import JobDelivery

if TYPE_CHECKING:
    from faststream.message import StreamMessage
    from opentelemetry.metrics import Meter, MeterProvider
    from opentelemetry.trace import TracerProvider
    from prometheus_client import CollectorRegistry

MESSAGING_SYSTEM = "postgresql"


class PgTelemetrySettingsProvider:
    __slots__ = ("messaging_system",)

    def __init__(self) -> None:
        self.messaging_system = MESSAGING_SYSTEM

    def get_consume_attrs_from_message(self, msg: StreamMessage[JobDelivery]) -> dict[str, Any]:
        job = msg.raw_message.job
        return {
            SpanAttributes.MESSAGING_SYSTEM: self.messaging_system,
            SpanAttributes.MESSAGING_MESSAGE_ID: msg.message_id,
            SpanAttributes.MESSAGING_MESSAGE_CONVERSATION_ID: msg.correlation_id,
            MESSAGING_DESTINATION_PUBLISH_NAME: job.queue,
            "messaging.job.attempt": job.retry_count + 1,
        }

    def get_consume_destination_name(self, msg: StreamMessage[JobDelivery]) -> str:
        return msg.raw_message.job.queue

    def get_publish_attrs_from_cmd(self, cmd: PgPublishCommand) -> dict[str, Any]:
        return {
            SpanAttributes.MESSAGING_SYSTEM: self.messaging_system,
            SpanAttributes.MESSAGING_DESTINATION_NAME: cmd.target,
            SpanAttributes.MESSAGING_MESSAGE_CONVERSATION_ID: cmd.correlation_id,
        }

    def get_publish_destination_name(self, cmd: PgPublishCommand) -> str:
        return cmd.target


class PgTelemetryMiddleware(TelemetryMiddleware[PgPublishCommand]):
    """OpenTelemetry spans and messaging metrics for :class:`PgBroker`."""

    def __init__(
        self,
        *,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        meter: Meter | None = None,
        include_messages_counters: bool = True,
    ) -> None:
        super().__init__(
            settings_provider_factory=lambda _: PgTelemetrySettingsProvider(),
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
            meter=meter,
            include_messages_counters=include_messages_counters,
        )


class PgMetricsSettingsProvider:
    __slots__ = ("messaging_system",)

    def __init__(self) -> None:
        self.messaging_system = MESSAGING_SYSTEM

    def get_consume_attrs_from_message(self, msg: StreamMessage[JobDelivery]) -> ConsumeAttrs:
        body = msg.body
        if isinstance(body, list):  # a batch subscriber's message: one body per job
            return {
                "destination_name": msg.raw_message.job.queue,
                "message_size": sum(len(b) for b in body),
                "messages_count": len(body),
            }
        return {
            "destination_name": msg.raw_message.job.queue,
            "message_size": len(body),
            "messages_count": 1,
        }

    def get_publish_destination_name_from_cmd(self, cmd: PgPublishCommand) -> str:
        return cmd.target


class PgPrometheusMiddleware(PrometheusMiddleware[JobDelivery, PgPublishCommand]):
    """FastStream's Prometheus metrics (received, processed, durations, publishes) for jobs."""

    def __init__(
        self,
        *,
        registry: CollectorRegistry,
        app_name: str = EMPTY,
        metrics_prefix: str = "faststream",
        received_messages_size_buckets: Sequence[float] | None = None,
        custom_labels: dict[str, str | Callable[[Any], str]] | None = None,
    ) -> None:
        super().__init__(
            settings_provider_factory=lambda _: PgMetricsSettingsProvider(),
            registry=registry,
            app_name=app_name,
            metrics_prefix=metrics_prefix,
            received_messages_size_buckets=received_messages_size_buckets,
            custom_labels=custom_labels,
        )
