"""Commands: imperative requests sent to one service's queue, and the template contexts of
``SendEmail``."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from insightdesk.shared.contracts.base import Command, Contract
from insightdesk.shared.contracts.reports import (
    DailyDigestContext,
    ReportReadyContext,
    WeeklyReportContext,
)

_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


class Attachment(Contract):
    """A file attached to a mail, by reference to shared object storage (never the bytes in
    the job): ``key`` names the object; the email service reads it when it sends.

    ``inline`` parts are ``multipart/related`` images the HTML shows as ``cid:<content_id>``;
    the others are ordinary attachments."""

    key: str = Field(min_length=1, max_length=1024)
    filename: str = Field(min_length=1, max_length=255, pattern=r"^[^/\\\x00-\x1f]+$")
    content_type: str = Field(default="application/octet-stream", pattern=r"^[\w.+-]+/[\w.+-]+$")
    inline: bool = False
    content_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]{1,100}$")

    @field_validator("key")
    @classmethod
    def _relative_key(cls, value: str) -> str:
        parts = value.split("/")
        if value.startswith("/") or any(p in {"", ".", ".."} for p in parts):
            raise ValueError(f"not a relative storage key: {value!r}")
        return value

    @model_validator(mode="after")
    def _inline_has_id(self) -> Attachment:
        if self.inline and self.content_id is None:
            raise ValueError("an inline attachment needs a content_id (its cid: name)")
        return self


class SendEmail(Command):
    """Render ``template`` with ``context`` and deliver it to ``to`` — at most once per
    ``idempotency_key``, however often the job is retried."""

    queue: ClassVar[str] = "email"
    to: str
    template: str = Field(pattern=r"^[a-z0-9][a-z0-9\-]{0,63}$")
    context: dict[str, Any] = {}
    idempotency_key: str = Field(min_length=1, max_length=200)
    locale: str = "en"
    attachments: list[Attachment] = []
    """Files from storage: inline images (``cid:``) and attachments."""

    @field_validator("to")
    @classmethod
    def _address(cls, value: str) -> str:
        if not _EMAIL.fullmatch(value):
            raise ValueError(f"not an e-mail address: {value!r}")
        return value


# --- Template contexts ------------------------------------------------------------------------
# The ``context`` of a ``SendEmail`` is part of the contract: one model per template, with flat
# keys. The producer builds the model and sends ``template_context(model)``; the email service
# validates the context with ``TEMPLATE_CONTEXTS[template]`` before rendering. Like every
# contract, a context only ever gains fields, each with a default (and templates guard optional
# names with ``is defined``), so producers and consumers can be upgraded in either order.


class WelcomeContext(Contract):
    """``welcome``: sent to a newly registered user."""

    name: str
    recipient_name: str
    organization_name: str
    login_url: str | None = None


class TicketNewMessageContext(Contract):
    """``ticket-new-message``: someone wrote on a ticket the recipient takes part in."""

    recipient_name: str
    ticket_id: str
    ticket_subject: str
    author_name: str
    body: str
    ticket_url: str | None = None


class TicketStatusChangeContext(Contract):
    """``ticket-status-change``: a ticket's status changed (statuses by their wire value)."""

    recipient_name: str
    ticket_id: str
    ticket_subject: str
    old_status: str
    new_status: str
    changed_by_name: str
    ticket_url: str | None = None


class TicketAssignedContext(Contract):
    """``ticket-assigned``: the recipient was assigned a ticket (by someone else)."""

    recipient_name: str
    ticket_id: str
    ticket_subject: str
    assigned_by_name: str
    ticket_priority: str | None = None
    ticket_url: str | None = None


class TicketUpdateItem(BaseModel):
    """One update folded into a ``ticket-update`` mail: a message, a status change or an
    assignment (``kind``), with who did it and when (UTC); part of its context's contract."""

    model_config = ConfigDict(frozen=True)

    kind: str
    at: str
    by_name: str
    body: str | None = None
    old_status: str | None = None
    new_status: str | None = None


class TicketUpdateContext(Contract):
    """``ticket-update``: everything that happened on a ticket since the recipient's last mail
    about it, in order (every message; ``status`` is the latest)."""

    recipient_name: str
    ticket_id: str
    ticket_subject: str
    status: str
    updates: list[TicketUpdateItem]
    ticket_url: str | None = None


class TicketOpenedContext(Contract):
    """``ticket-opened``: a ticket was opened: the customer's confirmation
    (``for_customer``), or a notice to the organization's staff while it is unassigned."""

    recipient_name: str
    ticket_id: str
    ticket_subject: str
    customer_name: str
    opened_by_name: str
    ticket_priority: str
    for_customer: bool
    body: str | None = None
    ticket_url: str | None = None


class SlaWarningContext(Contract):
    """``sla-warning``: a ticket's SLA target is close to its deadline."""

    recipient_name: str
    ticket_id: str
    ticket_subject: str
    target: str
    """``first_response``, ``next_response``, ``periodic_update`` or ``resolution``."""
    due_at: str
    """ISO 8601 instant (UTC)."""
    remaining_minutes: str | None = None
    ticket_url: str | None = None


class SlaBreachedContext(Contract):
    """``sla-breached``: a ticket missed an SLA target (``escalation_level`` set when this is
    an escalation after the breach)."""

    recipient_name: str
    ticket_id: str
    ticket_subject: str
    target: str
    due_at: str
    escalation_level: str | None = None
    ticket_url: str | None = None


class TicketClosedContext(Contract):
    """``ticket-closed``: the recipient's resolved ticket was closed automatically."""

    recipient_name: str
    ticket_id: str
    ticket_subject: str
    resolved_days: int
    """How many days the ticket had been resolved (the organization's auto-close setting)."""
    ticket_url: str | None = None


TEMPLATE_CONTEXTS: dict[str, type[Contract]] = {
    "ticket-update": TicketUpdateContext,
    "ticket-opened": TicketOpenedContext,
    "welcome": WelcomeContext,
    "ticket-new-message": TicketNewMessageContext,
    "ticket-status-change": TicketStatusChangeContext,
    "ticket-assigned": TicketAssignedContext,
    "ticket-closed": TicketClosedContext,
    "daily-digest": DailyDigestContext,
    "weekly-report": WeeklyReportContext,
    "report-ready": ReportReadyContext,
    "sla-warning": SlaWarningContext,
    "sla-breached": SlaBreachedContext,
}
"""Template name → the model of its ``SendEmail.context``."""


def template_context(context: Contract) -> dict[str, Any]:
    """``context`` as a ``SendEmail.context``: JSON values, unset optional keys left out (a
    template tests them with ``is defined``), without the model's ``schema_version``."""
    return context.model_dump(mode="json", exclude_none=True, exclude={"schema_version"})
