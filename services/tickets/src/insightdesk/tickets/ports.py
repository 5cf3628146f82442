"""The outbox port: how use cases hand over events and e-mails without knowing the transport.

The adapter (:mod:`insightdesk.tickets.outbox`) writes them as jobs into the transaction of the
write that caused them.
"""

from __future__ import annotations

from typing import Protocol

from insightdesk.shared.contracts import Event
from insightdesk.tickets.notifications import Notification, notifications_for


class Outbox(Protocol):
    """Where events and commands go, inside the transaction of the write that caused them."""

    async def publish(self, event: Event) -> None:
        """Publish ``event`` to every queue subscribed to ``event.name``."""

    async def send(self, notification: Notification) -> bool:
        """Queue the e-mail; False when its dedupe key already sent one in the window."""


async def emit(event: Event, *, outbox: Outbox) -> None:
    """Publish ``event`` and send the e-mails the notification policy derives from it."""
    await outbox.publish(event)
    for notification in notifications_for(event):
        await outbox.send(notification)
