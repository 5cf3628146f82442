"""The outbox adapter: events and e-mails become queue jobs in the request's own transaction.

``PgBroker`` writes through the psycopg connection underneath the SQLAlchemy session, so the
jobs commit or roll back with the ticket change that caused them (and the broker's telemetry
middleware puts the current trace context into each job's headers).

A held update is a ``pending_notifications`` row plus a :class:`FlushNotifications` job for
(ticket, recipient) starting ``window`` seconds later on the ``short`` queue
``ticket-notifications``: while one flush job of the pair is queued, another is refused
(race-free, by the engine's unique index), so the window runs from the FIRST pending update.
The pair's transaction-scoped advisory lock, taken here and by the flush, orders a hold
against a running flush: either the flush sees the new row, or the hold's job is accepted
because the flush's job is already active — never neither.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from insightdesk.shared.contracts import Command, Event
from insightdesk.shared.queue.broker import JobOptions, PgBroker
from insightdesk.tickets.models import PendingNotification
from insightdesk.tickets.notifications import (
    WINDOW_SECONDS,
    FlushNotifications,
    Notification,
    PendingUpdate,
)
from insightdesk.tickets.repository import lock_key


class BrokerOutbox:
    """:class:`insightdesk.tickets.ports.Outbox` over a :class:`PgBroker` and one session."""

    def __init__(
        self,
        broker: PgBroker,
        session: AsyncSession,
        *,
        window_seconds: float = WINDOW_SECONDS,
        public_base_url: str | None = None,
    ) -> None:
        self.broker = broker
        self.session = session
        self.window_seconds = window_seconds
        self.public_base_url = public_base_url

    async def publish(self, event: Event) -> None:
        await self.broker.publish_event(event.name, event, conn=self.session)

    async def send_command(self, command: Command) -> uuid.UUID | None:
        """Send ``command`` to its queue in the request's transaction."""
        return await self.broker.publish(command, command.queue, conn=self.session)

    async def send(self, notification: Notification) -> bool:
        command = notification.command
        job = await self.broker.publish(command, command.queue, conn=self.session)
        return job is not None

    async def hold(self, update: PendingUpdate) -> None:
        await lock_key(self.session, update.flush_key)  # ordered against a running flush
        self.session.add(
            PendingNotification(
                organization_id=update.ticket.organization_id,
                ticket_id=update.ticket.id,
                recipient_id=update.recipient.id,
                item=update.item.model_dump(mode="json", exclude={"schema_version"}),
                created_at=update.at,
            )
        )
        await self.session.flush()
        flush = FlushNotifications(ticket_id=update.ticket.id, recipient_id=update.recipient.id)
        options = JobOptions(
            singleton_key=update.flush_key, start_after=timedelta(seconds=self.window_seconds)
        )
        await self.broker.publish(flush, flush.queue, options=options, conn=self.session)
