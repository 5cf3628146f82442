"""The mail as it leaves the service: composed once per attempt, handed to a provider.

Everything that identifies a mail is derived from its idempotency key, so every attempt of one
``SendEmail`` produces the same identifiers: the ``Message-ID`` (a retransmission keeps it, as
RFC 5322 intends), the file name in the file sink and the ``Idempotency-Key`` sent to Resend.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

from insightdesk.email.errors import PermanentDeliveryError
from insightdesk.email.templates import RenderedEmail

IDEMPOTENCY_HEADER = "X-InsightDesk-Idempotency-Key"
TRACE_HEADER = "X-Trace-Id"
TEMPLATE_HEADER = "X-InsightDesk-Template"


def delivery_token(idempotency_key: str) -> str:
    """A stable, header- and file-name-safe digest of an idempotency key (64 hex digits)."""
    return hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()


def message_id_for(idempotency_key: str, domain: str) -> str:
    """The ``Message-ID`` of the mail sent for ``idempotency_key`` (the same on every retry)."""
    return f"<{delivery_token(idempotency_key)[:40]}@{domain}>"


def address_domain(address: str, default: str = "insightdesk.local") -> str:
    """The domain of an address such as ``Name <user@example.com>``."""
    _, addr = parseaddr(address)
    local, at, domain = addr.rpartition("@")
    return domain.strip() if at and local and domain.strip() else default


@dataclass(frozen=True, slots=True)
class MailFile:
    """A file in a mail: an inline image (``cid:content_id`` in the HTML) or an attachment."""

    filename: str
    content_type: str
    data: bytes
    inline: bool = False
    content_id: str | None = None

    @property
    def types(self) -> tuple[str, str]:
        maintype, _, subtype = self.content_type.partition("/")
        return maintype, subtype or "octet-stream"


@dataclass(frozen=True, slots=True)
class OutgoingEmail:
    """One mail, ready for any provider: both parts, addresses and headers."""

    sender: str
    to: str
    subject: str
    text: str
    html: str
    message_id: str
    date: datetime
    headers: Mapping[str, str] = field(default_factory=dict)
    """Extra headers (idempotency key, trace id, template name...)."""
    files: tuple[MailFile, ...] = ()
    """Inline images and attachments (read from storage by the handler)."""

    def to_mime(self) -> EmailMessage:
        """The RFC 5322 message: ``multipart/alternative`` with a text and an HTML part; inline
        images make the HTML part ``multipart/related``, attachments wrap it all in
        ``multipart/mixed``."""
        msg = EmailMessage(policy=policy.SMTP)
        try:
            msg["From"] = self.sender
            msg["To"] = self.to
            msg["Subject"] = self.subject
            msg["Date"] = format_datetime(self.date)
            msg["Message-ID"] = self.message_id
            for name, value in self.headers.items():
                msg[name] = value
        except ValueError as exc:  # CR/LF or other header injection attempts
            raise PermanentDeliveryError(f"mail header rejected: {exc}") from exc
        msg.set_content(self.text, subtype="plain", charset="utf-8")
        msg.add_alternative(self.html, subtype="html", charset="utf-8")
        inline = [f for f in self.files if f.inline]
        if inline:
            html_part = msg.get_body(preferencelist=("html",))
            assert html_part is not None  # added just above
            for item in inline:
                maintype, subtype = item.types
                html_part.add_related(
                    item.data,
                    maintype=maintype,
                    subtype=subtype,
                    cid=f"<{item.content_id}>",
                    filename=item.filename,
                    disposition="inline",
                )
        for item in self.files:
            if not item.inline:
                maintype, subtype = item.types
                msg.add_attachment(
                    item.data, maintype=maintype, subtype=subtype, filename=item.filename
                )
        return msg

    def as_bytes(self) -> bytes:
        """The message in wire form (CRLF line ends), as stored in an ``.eml`` file."""
        return self.to_mime().as_bytes(policy=policy.SMTP)


@dataclass(frozen=True, slots=True)
class DeliveryReceipt:
    """What a provider says after accepting a mail."""

    provider: str
    provider_message_id: str | None = None


def compose(
    rendered: RenderedEmail,
    *,
    sender: str,
    to: str,
    idempotency_key: str,
    message_id: str,
    trace_id: str | None,
    now: datetime,
    files: tuple[MailFile, ...] = (),
) -> OutgoingEmail:
    """The mail for one attempt of a ``SendEmail`` (pure: ``now`` is passed in)."""
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in idempotency_key):
        raise PermanentDeliveryError("the idempotency key contains control characters")
    headers = {
        IDEMPOTENCY_HEADER: idempotency_key,
        TEMPLATE_HEADER: rendered.template,
        "Auto-Submitted": "auto-generated",  # RFC 3834: no auto-replies to notifications
    }
    if trace_id:
        headers[TRACE_HEADER] = trace_id
    return OutgoingEmail(
        sender=sender,
        to=to,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        message_id=message_id,
        date=now,
        headers=headers,
        files=files,
    )
