"""FastStream over the queue engine: ``PgBroker`` and friends.

Service code is written the FastStream way::

    broker = PgBroker(settings.database_url)

    @broker.subscriber("email", concurrency=10, policy=QueueOptions(retry_limit=5))
    async def send_email(command: SendEmail, logger: Logger) -> None: ...

    await broker.publish(SendEmail(...), "email", options=JobOptions(priority=5), conn=session)
    await broker.publish_event("ticket.created", TicketCreated(...), conn=session)

Per-job options are the engine's :class:`JobOptions`, queue definitions its
:class:`QueueOptions` / :class:`QueuePolicy`; nothing else about the transport leaks into
handlers. ``TestPgBroker`` runs handlers in memory for unit tests.

``PgMessage`` here is the handler annotation that injects the current message (``PgBatchMessage``
for ``batch=True`` subscribers); the classes themselves are in
:mod:`insightdesk.shared.queue.broker.message`.

``@broker.subscriber(queue, batch=True, max_records=N)`` hands the handler a list of bodies
(``async def h(bodies: list[Model])``), the jobs of one claim, settled together.
"""

from faststream.exceptions import AckMessage, NackMessage, RejectMessage

from insightdesk.shared.queue.broker.annotations import PgBatchMessage, PgMessage
from insightdesk.shared.queue.broker.asgi import make_asgi_app
from insightdesk.shared.queue.broker.broker import PgBroker
from insightdesk.shared.queue.broker.command import PgPublishCommand, PgResponse
from insightdesk.shared.queue.broker.message import JobDelivery, SnoozeMessage
from insightdesk.shared.queue.broker.metrics import QueueMetrics
from insightdesk.shared.queue.broker.publisher import PgPublisher
from insightdesk.shared.queue.broker.router import PgRoute, PgRoutePublisher, PgRouter
from insightdesk.shared.queue.broker.subscriber import PgSubscriber
from insightdesk.shared.queue.broker.telemetry import (
    PgPrometheusMiddleware,
    PgTelemetryMiddleware,
)
from insightdesk.shared.queue.broker.testing import TestPgBroker
from insightdesk.shared.queue.options import JobOptions, QueueOptions, QueuePolicy

__all__ = [
    "AckMessage",
    "JobDelivery",
    "JobOptions",
    "NackMessage",
    "PgBatchMessage",
    "PgBroker",
    "PgMessage",
    "PgPrometheusMiddleware",
    "PgPublishCommand",
    "PgPublisher",
    "PgResponse",
    "PgRoute",
    "PgRoutePublisher",
    "PgRouter",
    "PgSubscriber",
    "PgTelemetryMiddleware",
    "QueueMetrics",
    "QueueOptions",
    "QueuePolicy",
    "RejectMessage",
    "SnoozeMessage",
    "TestPgBroker",
    "make_asgi_app",
]
