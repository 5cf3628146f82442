"""The tickets service's queue consumers, registered on a :class:`PgBroker`.

``subscribe_notification_flush`` consumes ``ticket-notifications``: each job is the end of one
(ticket, recipient) window, handled by :func:`insightdesk.tickets.handlers.flush_notifications`
in its own transaction. The tickets worker process (``python -m insightdesk.tickets worker``,
:func:`insightdesk.tickets.worker.build_worker_broker`) registers it; the API consumes nothing.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from insightdesk.shared.queue.broker import PgBroker, PgSubscriber
from insightdesk.shared.queue.options import QueueOptions, QueuePolicy
from insightdesk.tickets import handlers
from insightdesk.tickets.notifications import FLUSH_QUEUE, FlushNotifications
from insightdesk.tickets.outbox import BrokerOutbox
from insightdesk.tickets.repository import TicketRepository
from insightdesk.tickets.settings import TicketsSettings

FLUSH_QUEUE_OPTIONS = QueueOptions(policy=QueuePolicy.SHORT, retry_limit=10)
"""``short``: one queued flush per (ticket, recipient) singleton key — the window's job."""


def make_outbox(broker: PgBroker, session: AsyncSession, settings: TicketsSettings) -> BrokerOutbox:
    return BrokerOutbox(
        broker,
        session,
        window_seconds=settings.notify_window_seconds,
        public_base_url=settings.public_base_url,
    )


def subscribe_notification_flush(
    broker: PgBroker,
    *,
    sessions: async_sessionmaker[AsyncSession],
    settings: TicketsSettings,
    concurrency: int = 4,
) -> PgSubscriber:
    """Register the ``ticket-notifications`` consumer on ``broker``."""

    async def flush(command: FlushNotifications) -> int:
        async with sessions() as session:
            outbox = make_outbox(broker, session, settings)
            count = await handlers.flush_notifications(
                command, repo=TicketRepository(session), outbox=outbox
            )
            await session.commit()
            return count

    subscriber = broker.subscriber(FLUSH_QUEUE, policy=FLUSH_QUEUE_OPTIONS, concurrency=concurrency)
    subscriber(flush)
    return subscriber
