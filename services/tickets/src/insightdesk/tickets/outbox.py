"""The outbox adapter: events and e-mails become queue jobs in the request's own transaction.

``PgBroker`` writes through the psycopg connection underneath the SQLAlchemy session, so the
jobs commit or roll back with the ticket change that caused them (and the broker's telemetry
middleware puts the current trace context into each job's headers).
"""

from __future__ import annotations

import uuid

from sqlmodel.ext.asyncio.session import AsyncSession

from insightdesk.shared.contracts import Command, Event
from insightdesk.shared.queue.broker import JobOptions, PgBroker
from insightdesk.tickets.notifications import Notification


class BrokerOutbox:
    """:class:`insightdesk.tickets.ports.Outbox` over a :class:`PgBroker` and one session."""

    def __init__(self, broker: PgBroker, session: AsyncSession) -> None:
        self.broker = broker
        self.session = session

    async def publish(self, event: Event) -> None:
        await self.broker.publish_event(event.name, event, conn=self.session)

    async def send_command(self, command: Command) -> uuid.UUID | None:
        """Send ``command`` to its queue in the request's transaction."""
        return await self.broker.publish(command, command.queue, conn=self.session)

    async def send(self, notification: Notification) -> bool:
        options = None
        if notification.dedupe_key is not None:
            options = JobOptions(
                singleton_key=notification.dedupe_key,
                singleton_seconds=notification.dedupe_seconds,
            )
        command = notification.command
        job = await self.broker.publish(command, command.queue, options=options, conn=self.session)
        return job is not None
