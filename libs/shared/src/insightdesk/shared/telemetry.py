"""OpenTelemetry set-up for a service process, done once in its composition root.

Traces go to whatever the settings name: an OTLP endpoint (production, the compose collector),
a JSON-lines file (local runs and end-to-end tests read it), or nowhere. Trace context crosses
the queue in each job's headers (the broker's telemetry middleware), so one trace runs from the
HTTP request to the email provider call.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)


class JsonLinesSpanExporter(SpanExporter):
    """Appends one JSON object per finished span to a file (ids in W3C hex form)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = [json.dumps(span_record(span)) for span in spans]
        with self._lock, self.path.open("a", encoding="utf-8") as out:
            out.write("".join(line + "\n" for line in lines))
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def span_record(span: ReadableSpan) -> dict[str, Any]:
    ctx = span.get_span_context()
    parent = span.parent
    return {
        "name": span.name,
        "trace_id": f"{ctx.trace_id:032x}" if ctx else None,
        "span_id": f"{ctx.span_id:016x}" if ctx else None,
        "parent_span_id": f"{parent.span_id:016x}" if parent else None,
        "kind": span.kind.name,
        "service": span.resource.attributes.get("service.name"),
        "attributes": {k: v for k, v in (span.attributes or {}).items() if _plain(v)},
        "start": span.start_time,
        "end": span.end_time,
    }


def _plain(value: object) -> bool:
    return isinstance(value, str | int | float | bool)


def configure_tracing(
    service_name: str,
    *,
    spans_file: Path | None = None,
    otlp_endpoint: str | None = None,
    set_global: bool = True,
) -> TracerProvider:
    """A tracer provider for ``service_name`` exporting where the settings say."""
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    if spans_file is not None:
        provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(spans_file)))
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter,
        )

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint)))
    if set_global:
        trace.set_tracer_provider(provider)
    return provider


def current_trace_id() -> str | None:
    """The W3C trace id of the active span, or None outside a trace."""
    ctx = trace.get_current_span().get_span_context()
    return f"{ctx.trace_id:032x}" if ctx.is_valid else None
