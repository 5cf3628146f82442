"""What callers ask the service to do: validated input of the use cases (and the HTTP bodies).

Unknown fields are refused (a typo is a 422, not a silently ignored field); strings are
stripped; e-mail addresses are lower-cased and must be deliverable-looking, since the
notification e-mails are addressed to them.
"""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from insightdesk.shared.contracts import Role, TicketPriority, TicketStatus

_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


def _email(value: str) -> str:
    if len(value) > 254 or not _EMAIL.fullmatch(value):
        raise ValueError("must be an e-mail address such as ada@example.com")
    return value


Email = Annotated[
    str, StringConstraints(strip_whitespace=True, to_lower=True), AfterValidator(_email)
]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Subject = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=250)]
Body = Annotated[str, StringConstraints(min_length=1, max_length=20_000, pattern=r"\S")]


class Command(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NewAdmin(Command):
    email: Email
    name: Name


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            f"unknown time zone {value!r}; use an IANA name such as Europe/Berlin"
        ) from None
    return value


TimeZone = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=64), AfterValidator(_zone)
]
Locale = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[a-z]{2,3}(-[A-Z]{2})?$")
]
AutoCloseDays = Annotated[int, Field(ge=0, le=3650)]


class CreateOrganization(Command):
    """Bootstrap a tenant: the organization and its first admin."""

    name: Name
    admin: NewAdmin
    time_zone: TimeZone = "UTC"
    locale: Locale = "en"
    auto_close_after_days: AutoCloseDays = 7


class UpdateOrganization(Command):
    """Change the organization's settings (fields left out stay as they are)."""

    name: Name | None = None
    time_zone: TimeZone | None = None
    """IANA zone: the organization's local day (digests, business hours)."""
    locale: Locale | None = None
    """Language of the organization's e-mails and reports (``en``, ``de``, ``pt-BR``)."""
    auto_close_after_days: AutoCloseDays | None = None
    """Resolved tickets close after this many days; 0 = never."""


class CreateUser(Command):
    """Register a user in the caller's organization (admins only)."""

    email: Email
    name: Name
    role: Role = Role.CUSTOMER


class CreateTicket(Command):
    """Open a ticket. Customers open their own; agents and admins name the customer."""

    subject: Subject
    priority: TicketPriority = TicketPriority.NORMAL
    customer_id: uuid.UUID | None = Field(
        default=None, description="Required when an agent or admin opens the ticket."
    )
    body: Body | None = Field(default=None, description="The opening message, if any.")


class AddMessage(Command):
    body: Body


class ChangeStatus(Command):
    status: TicketStatus


class AssignTicket(Command):
    assignee_id: uuid.UUID | None = Field(
        description="An agent or admin of the organization; null unassigns the ticket."
    )


class ChangePriority(Command):
    priority: TicketPriority


class TicketFilter(Command):
    """Which tickets a listing returns (always within what the caller may see)."""

    status: TicketStatus | None = None
    assignee_id: uuid.UUID | None = None
    archived: bool = False
    """Include archived tickets (closed long ago; see the cleanup job)."""
    sla: Literal["breached", "at_risk"] | None = None
    """Only tickets with a breached SLA target, or with one past its warning threshold and
    not breached (as the SLA service last reported)."""
    limit: int = Field(default=50, ge=1, le=200)
    offset: int = Field(default=0, ge=0)
