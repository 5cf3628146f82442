"""Test doubles at the email service's edges: a provider that records what it is given and a
delivery log with the same claim rules as the PostgreSQL one, in memory."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from insightdesk.email.delivery import Claim, ClaimState, DeliveryRequest
from insightdesk.email.messages import DeliveryReceipt, OutgoingEmail
from insightdesk.shared.contracts import EmailDelivered, EmailFailed, Event


class RecordingProvider:
    """Accepts every mail (or raises the queued errors first) and remembers it."""

    name = "recording"

    def __init__(self, *errors: Exception) -> None:
        self.sent: list[tuple[OutgoingEmail, str]] = []
        self.errors = list(errors)
        self.closed = False

    async def send(self, message: OutgoingEmail, idempotency_key: str) -> DeliveryReceipt:
        if self.errors:
            raise self.errors.pop(0)
        self.sent.append((message, idempotency_key))
        return DeliveryReceipt(self.name, f"rec-{len(self.sent)}")

    async def aclose(self) -> None:
        self.closed = True


@dataclass
class Row:
    request: DeliveryRequest
    status: str
    claim: uuid.UUID | None
    claimed_until: datetime | None
    provider_message_id: str | None = None
    error: str | None = None
    updated_at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass
class MemoryDeliveryLog:
    """The claim rules of ``sql/claim.sql``, on a dict; events land in ``events``."""

    rows: dict[str, Row] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)

    async def claim(self, request: DeliveryRequest) -> Claim:
        now = datetime.now(UTC)
        row = self.rows.get(request.idempotency_key)
        takeover = row is None or row.status == "failed"
        if row is not None and row.status == "sending":
            assert row.claimed_until is not None
            takeover = row.request.job_id == request.job_id or row.claimed_until <= now
        if row is not None and row.status == "delivered":
            return Claim(ClaimState.DELIVERED, provider_message_id=row.provider_message_id)
        if not takeover:
            assert row is not None and row.claimed_until is not None
            return Claim(ClaimState.BUSY, retry_in=(row.claimed_until - now).total_seconds())
        token = uuid.uuid4()
        self.rows[request.idempotency_key] = Row(
            request, "sending", token, now + timedelta(seconds=request.lease_seconds)
        )
        return Claim(ClaimState.CLAIMED, token=token)

    async def record_delivered(
        self,
        request: DeliveryRequest,
        claim: Claim,
        receipt: DeliveryReceipt,
        event: EmailDelivered,
    ) -> bool:
        row = self.rows[request.idempotency_key]
        if row.status == "delivered":
            return False
        row.status, row.claim, row.claimed_until = "delivered", None, None
        row.provider_message_id = receipt.provider_message_id
        self.events.append(event)
        return True

    async def record_failed(
        self, request: DeliveryRequest, claim: Claim, error: str, event: EmailFailed
    ) -> bool:
        row = self.rows[request.idempotency_key]
        if row.claim != claim.token or row.status != "sending":
            return False
        row.status, row.error, row.claim, row.claimed_until = "failed", error, None, None
        self.events.append(event)
        return True

    async def purge_before(self, cutoff: datetime, limit: int) -> int:
        old = [
            key
            for key, row in sorted(self.rows.items(), key=lambda kv: kv[1].updated_at)
            if row.status in {"delivered", "failed"} and row.updated_at < cutoff
        ][:limit]
        for key in old:
            del self.rows[key]
        return len(old)

    async def release(self, request: DeliveryRequest, claim: Claim, error: str) -> None:
        row = self.rows[request.idempotency_key]
        if row.claim == claim.token and row.status == "sending":
            row.error, row.claimed_until = error, datetime.now(UTC)
