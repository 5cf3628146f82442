"""The ASGI application of a queue-consuming service: the broker plus its operational routes.

* ``/healthz``: the process is alive (always 200 while it serves HTTP);
* ``/readyz``: the broker is started and the database answers (200, else 503);
* ``/metrics``: Prometheus text format of ``registry`` (queue depth and age refreshed first);
* ``/docs`` (and ``/docs.json``): the AsyncAPI document of the broker's queues and events.

Run it with ``faststream run module:app`` or any ASGI server; on SIGTERM the server ends the
lifespan, the broker stops claiming, in-flight jobs finish within the broker's graceful
timeout and unfinished ones go back to their queue.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from faststream.asgi import AsgiFastStream, AsgiResponse, get
from faststream.asgi.factories import AsyncAPIRoute
from faststream.asgi.types import ASGIApp, Scope
from faststream.specification import AsyncAPI
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from insightdesk.shared.errors import QueueError

# Scope is a runtime annotation: FastStream inspects the route functions' signatures.

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from insightdesk.shared.queue.broker.broker import PgBroker
    from insightdesk.shared.queue.broker.metrics import QueueMetrics


def make_asgi_app(
    broker: PgBroker,
    *,
    title: str = "InsightDesk service",
    version: str = "0.1.0",
    description: str | None = None,
    registry: CollectorRegistry | None = None,
    queue_metrics: QueueMetrics | None = None,
    ready_timeout: float = 2.0,
    asyncapi_path: str | None = "/docs",
    routes: Sequence[tuple[str, ASGIApp]] = (),
    **app_options: Any,
) -> AsgiFastStream:
    """An :class:`AsgiFastStream` for ``broker`` with health, readiness, metrics and docs.

    ``queue_metrics`` defaults to the broker's; ``app_options`` go to ``AsgiFastStream``
    (``lifespan``, ``on_startup``, ``after_shutdown``, ``logger``...).
    """
    metrics = queue_metrics if queue_metrics is not None else broker.queue_metrics

    @get(include_in_schema=False)
    async def healthz(scope: Scope) -> AsgiResponse:
        return AsgiResponse(b"ok", 200, headers={"content-type": "text/plain"})

    @get(include_in_schema=False)
    async def readyz(scope: Scope) -> AsgiResponse:
        if broker.running and await broker.ping(ready_timeout):
            return AsgiResponse(b"ready", 200, headers={"content-type": "text/plain"})
        return AsgiResponse(b"not ready", 503, headers={"content-type": "text/plain"})

    all_routes: list[tuple[str, ASGIApp]] = [("/healthz", healthz), ("/readyz", readyz)]

    if registry is not None:

        @get(include_in_schema=False)
        async def metrics_route(scope: Scope) -> AsgiResponse:
            if metrics is not None and broker.running:
                # on a database error serve what was last read: the scrape itself must not fail
                with contextlib.suppress(QueueError):
                    await metrics.refresh(broker.client)
            return AsgiResponse(
                generate_latest(registry), 200, headers={"content-type": CONTENT_TYPE_LATEST}
            )

        all_routes.append(("/metrics", metrics_route))

    all_routes.extend(routes)
    return AsgiFastStream(
        broker,
        asgi_routes=all_routes,
        specification=AsyncAPI(broker, title=title, version=version, description=description),
        asyncapi_path=(
            AsyncAPIRoute(asyncapi_path, try_it_out_path=None) if asyncapi_path else None
        ),
        **app_options,
    )
