"""The one interface every delivery provider implements."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from insightdesk.email.messages import DeliveryReceipt, OutgoingEmail


@runtime_checkable
class EmailProvider(Protocol):
    """Hands a mail to the outside world.

    ``send`` returns once the provider has accepted the mail. It raises
    :class:`~insightdesk.email.errors.PermanentDeliveryError` when the provider refused it for
    good and :class:`~insightdesk.email.errors.TransientDeliveryError` when it may accept it
    later. ``idempotency_key`` is the same on every attempt for one mail; providers that can
    deduplicate on it do so.
    """

    name: str

    async def send(self, message: OutgoingEmail, idempotency_key: str) -> DeliveryReceipt: ...

    async def aclose(self) -> None:
        """Release connections (called once at shutdown)."""
        ...
