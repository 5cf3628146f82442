"""The ``SendEmail`` handler: claim the key, render, deliver, record — plain async code.

It knows nothing of the transport: the broker adapter (``app.py``) passes the job's attempt and
trace id in and maps the errors raised here onto the queue (see :mod:`insightdesk.email.errors`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from opentelemetry import trace

from insightdesk.email.delivery import Claim, ClaimState, DeliveryLog, DeliveryRequest
from insightdesk.email.errors import (
    DeliveryInProgress,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from insightdesk.email.messages import DeliveryReceipt, MailFile, compose, message_id_for
from insightdesk.email.providers.base import EmailProvider
from insightdesk.email.templates import TemplateRenderer
from insightdesk.shared.clock import Clock, SystemClock
from insightdesk.shared.contracts import EmailDelivered, EmailFailed, SendEmail
from insightdesk.shared.storage import ObjectNotFound, StorageError

SYSTEM_CLOCK = SystemClock()


class FileSource(Protocol):
    """Where attachments are read from (shared object storage)."""

    async def read(self, key: str) -> bytes: ...


async def load_files(command: SendEmail, files: FileSource | None) -> tuple[MailFile, ...]:
    """The command's attachments, read from storage. A missing object or a command with
    attachments but no storage configured is permanent; a storage outage is transient."""
    if not command.attachments:
        return ()
    if files is None:
        raise PermanentDeliveryError("the mail has attachments but no storage is configured")
    loaded = []
    for item in command.attachments:
        try:
            data = await files.read(item.key)
        except ObjectNotFound as exc:
            raise PermanentDeliveryError(f"attachment {item.key!r} is not in storage") from exc
        except StorageError as exc:
            raise TransientDeliveryError(f"attachment {item.key!r} unreadable: {exc}") from exc
        loaded.append(
            MailFile(
                filename=item.filename,
                content_type=item.content_type,
                data=data,
                inline=item.inline,
                content_id=item.content_id,
            )
        )
    return tuple(loaded)


@dataclass(frozen=True, slots=True)
class JobAttempt:
    """The job run that carries the command."""

    job_id: uuid.UUID | None
    number: int = 1
    """1 for the first run, 2 for the first retry, ..."""
    final: bool = False
    """True when a failure of this attempt is not retried (the job then dead-letters)."""
    trace_id: str | None = None


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    status: str
    """``delivered``, or ``duplicate`` when an earlier job had already delivered the key."""
    provider: str
    provider_message_id: str | None
    message_id: str | None = None

    def as_output(self) -> dict[str, Any]:
        """What the job stores as its output."""
        return {
            "status": self.status,
            "provider": self.provider,
            "provider_message_id": self.provider_message_id,
            "message_id": self.message_id,
        }


async def send_email(
    command: SendEmail,
    *,
    renderer: TemplateRenderer,
    provider: EmailProvider,
    delivery_log: DeliveryLog,
    sender: str,
    message_id_domain: str,
    attempt: JobAttempt,
    lease_seconds: float = 120.0,
    clock: Clock = SYSTEM_CLOCK,
    files: FileSource | None = None,
) -> DeliveryOutcome:
    """Deliver ``command`` at most once per idempotency key.

    Raises :class:`PermanentDeliveryError` (reject), :class:`TransientDeliveryError` (retry)
    or :class:`DeliveryInProgress` (look again later); the log and the ``email.failed`` event
    are written before a permanent or final failure is raised.
    """
    key = command.idempotency_key
    request = DeliveryRequest(
        idempotency_key=key,
        recipient=command.to,
        template=command.template,
        locale=command.locale,
        provider=provider.name,
        message_id=message_id_for(key, message_id_domain),
        trace_id=attempt.trace_id,
        job_id=attempt.job_id,
        attempt=attempt.number,
        lease_seconds=lease_seconds,
    )
    claim = await delivery_log.claim(request)
    if claim.state is ClaimState.DELIVERED:
        return DeliveryOutcome("duplicate", provider.name, claim.provider_message_id)
    if claim.state is ClaimState.BUSY:
        raise DeliveryInProgress(key, max(claim.retry_in, 1.0))

    try:
        rendered = renderer.render(command.template, command.context, command.locale)
        attached = await load_files(command, files)
        message = compose(
            rendered,
            sender=sender,
            to=command.to,
            idempotency_key=key,
            message_id=request.message_id,
            trace_id=attempt.trace_id,
            now=clock.now(),
            files=attached,
        )
    except PermanentDeliveryError as exc:
        await _failed(
            delivery_log, request=request, claim=claim, command=command, error=str(exc), clock=clock
        )
        raise
    except TransientDeliveryError as exc:  # storage unreachable: let the next attempt claim
        await delivery_log.release(request, claim, str(exc))
        raise

    tracer = trace.get_tracer("insightdesk.email")
    with tracer.start_as_current_span(
        f"email.send {provider.name}",
        kind=trace.SpanKind.CLIENT,
        attributes={
            "email.provider": provider.name,
            "email.template": command.template,
            "email.locale": rendered.locale,
            "messaging.job.attempt": attempt.number,
        },
    ):
        try:
            receipt = await provider.send(message, key)
        except PermanentDeliveryError as exc:
            await _failed(
                delivery_log,
                request=request,
                claim=claim,
                command=command,
                error=str(exc),
                clock=clock,
            )
            raise
        except Exception as exc:  # transient or unexpected: the job retries
            reason = str(exc) if isinstance(exc, TransientDeliveryError) else repr(exc)
            if attempt.final:
                await _failed(
                    delivery_log,
                    request=request,
                    claim=claim,
                    command=command,
                    error=reason,
                    clock=clock,
                )
            else:
                await delivery_log.release(request, claim, reason)
            raise

    await _delivered(
        delivery_log, request=request, claim=claim, command=command, receipt=receipt, clock=clock
    )
    return DeliveryOutcome(
        "delivered", receipt.provider, receipt.provider_message_id, request.message_id
    )


async def _delivered(
    delivery_log: DeliveryLog,
    *,
    request: DeliveryRequest,
    claim: Claim,
    command: SendEmail,
    receipt: DeliveryReceipt,
    clock: Clock,
) -> None:
    event = EmailDelivered(
        occurred_at=clock.now(),
        idempotency_key=command.idempotency_key,
        to=command.to,
        template=command.template,
        provider=receipt.provider,
        provider_message_id=receipt.provider_message_id,
    )
    await delivery_log.record_delivered(request, claim, receipt, event)


async def _failed(
    delivery_log: DeliveryLog,
    *,
    request: DeliveryRequest,
    claim: Claim,
    command: SendEmail,
    error: str,
    clock: Clock,
) -> None:
    event = EmailFailed(
        occurred_at=clock.now(),
        idempotency_key=command.idempotency_key,
        to=command.to,
        template=command.template,
        error=error,
    )
    await delivery_log.record_failed(request, claim, error, event)
