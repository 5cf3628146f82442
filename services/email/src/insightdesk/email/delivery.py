"""The delivery log as the handler sees it: claim an idempotency key, then record the outcome.

The log is what makes "at most once per idempotency key" hold while jobs are delivered at least
once. A key is *claimed* (status ``sending``, with a lease) before the provider is called, and
marked ``delivered`` (or ``failed``) afterwards, together with the event that announces it:

* a key already ``delivered`` is never sent again: the job completes as a duplicate;
* a key ``sending`` under another job's live lease is left alone: the job looks again later;
* a key ``sending`` under the same job (its earlier attempt crashed or failed), under an expired
  lease, or ``failed`` (e.g. a redriven dead letter) is taken over and sent (again).

The one window left is a crash after the provider accepted the mail and before ``delivered`` is
committed: the retry sends again. The providers close it as far as they can (Resend deduplicates
on the ``Idempotency-Key``, the file sink overwrites its file); over SMTP the recipient can get a
second copy, with the same ``Message-ID``.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from insightdesk.email.messages import DeliveryReceipt
from insightdesk.shared.contracts import EmailDelivered, EmailFailed


class ClaimState(enum.Enum):
    CLAIMED = "claimed"
    """This attempt holds the key and may send."""
    DELIVERED = "delivered"
    """The mail was delivered before: send nothing."""
    BUSY = "busy"
    """Another job holds the key under a live lease."""


@dataclass(frozen=True, slots=True)
class DeliveryRequest:
    """What an attempt claims: the key and what the log should say about the mail."""

    idempotency_key: str
    recipient: str
    template: str
    locale: str
    provider: str
    message_id: str
    trace_id: str | None
    job_id: uuid.UUID | None
    attempt: int
    lease_seconds: float


@dataclass(frozen=True, slots=True)
class Claim:
    state: ClaimState
    token: uuid.UUID | None = None
    """Proves the claim when recording the outcome (CLAIMED only)."""
    provider_message_id: str | None = None
    """The earlier delivery's id (DELIVERED only)."""
    retry_in: float = 0.0
    """Seconds until the other job's lease ends (BUSY only)."""


class DeliveryLog(Protocol):
    """Storage of delivery attempts keyed by idempotency key (see the module docstring)."""

    async def claim(self, request: DeliveryRequest) -> Claim: ...

    async def record_delivered(
        self,
        request: DeliveryRequest,
        claim: Claim,
        receipt: DeliveryReceipt,
        event: EmailDelivered,
    ) -> bool:
        """Mark the key delivered and publish ``event`` in the same transaction; False when
        the key was already recorded as delivered (nothing is published then)."""
        ...

    async def record_failed(
        self, request: DeliveryRequest, claim: Claim, error: str, event: EmailFailed
    ) -> bool:
        """Mark the key failed and publish ``event`` in the same transaction, if the claim still
        holds it; False otherwise."""
        ...

    async def release(self, request: DeliveryRequest, claim: Claim, error: str) -> None:
        """Give the key up after a failed attempt that will be retried."""
        ...

    async def purge_before(self, cutoff: datetime, limit: int) -> int:
        """Delete up to ``limit`` finished rows (delivered or failed) last changed before
        ``cutoff``; how many were. A key being sent is never purged."""
        ...
