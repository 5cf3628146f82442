"""The outbox port: how use cases hand over events and e-mails without knowing the transport.

The adapter (:mod:`insightdesk.tickets.outbox`) writes them as jobs into the transaction of the
write that caused them; held ticket updates become rows plus a delayed flush job.
"""

from __future__ import annotations

from typing import Protocol

from insightdesk.shared.contracts import Event
from insightdesk.tickets.notifications import Notification, PendingUpdate, notifications_for


class Outbox(Protocol):
    """Where events and commands go, inside the transaction of the write that caused them."""

    @property
    def public_base_url(self) -> str | None:
        """Where the ticket links in mails point (``TICKETS_PUBLIC_BASE_URL``)."""

    async def publish(self, event: Event) -> None:
        """Publish ``event`` to every queue subscribed to ``event.name``."""

    async def send(self, notification: Notification) -> bool:
        """Queue the e-mail now."""

    async def hold(self, update: PendingUpdate) -> None:
        """Keep ``update`` for its recipient's next mail about the ticket, and make sure a
        flush is scheduled for the end of the window (see :mod:`..notifications`)."""


async def emit(event: Event, *, outbox: Outbox) -> None:
    """Publish ``event`` and send (or hold) what the notification policy derives from it."""
    await outbox.publish(event)
    for planned in notifications_for(event):
        if isinstance(planned, PendingUpdate):
            await outbox.hold(planned)
        else:
            await outbox.send(planned)
