"""What callers ask the service to do: validated input of the use cases (and the HTTP bodies).

Unknown fields are refused (a typo is a 422, not a silently ignored field); strings are
stripped; e-mail addresses are lower-cased and must be deliverable-looking, since the
notification e-mails are addressed to them.

Text is checked before it reaches PostgreSQL or a mail header: one-line fields (names,
subjects, addresses) refuse every control character (Unicode ``Cc``, e.g. NUL, BEL, ESC, CR, LF)
and bodies allow only tab, CR and LF; no field takes a lone surrogate (which no database or
encoder can store). Addresses are checked by ``email-validator`` (pydantic's ``EmailStr``: dot
and hyphen placement, label lengths, characters, unsafe Unicode such as zero-width spaces) plus
RFC 5321's 64-octet local part, which that validator leaves to the server.
"""

from __future__ import annotations

import unicodedata
import uuid
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
)
from pydantic_core import PydanticCustomError

from insightdesk.shared.contracts import Role, TicketPriority, TicketStatus

BODY_CONTROLS = frozenset("\t\r\n")
LOCAL_PART_MAX = 64
PAGE_OFFSET_MAX = 1_000_000


def check_text(value: str, allowed: frozenset[str] = frozenset()) -> str:
    """``value`` unless it holds a lone surrogate or a control character not in ``allowed``."""
    for position, char in enumerate(value):
        category = unicodedata.category(char)
        if category == "Cs":
            raise PydanticCustomError(
                "lone_surrogate",
                "must be valid Unicode text (a lone surrogate U+{codepoint} at position "
                "{position})",
                {"codepoint": f"{ord(char):04X}", "position": position},
            )
        if category == "Cc" and char not in allowed:
            raise PydanticCustomError(
                "control_character",
                "must not contain control characters (U+{codepoint} at position {position})",
                {"codepoint": f"{ord(char):04X}", "position": position},
            )
    return value


def _one_line(value: object) -> object:
    return check_text(value) if isinstance(value, str) else value


def _multi_line(value: object) -> object:
    return check_text(value, BODY_CONTROLS) if isinstance(value, str) else value


def _email_input(value: object) -> object:
    return check_text(value).strip() if isinstance(value, str) else value


def _email(value: str) -> str:
    local = value.rpartition("@")[0]
    if len(local.encode()) > LOCAL_PART_MAX:
        raise PydanticCustomError(
            "value_error",
            "value is not a valid email address: the part before the @-sign is longer than "
            "{limit} octets",
            {"limit": LOCAL_PART_MAX},
        )
    return value.lower()


Email = Annotated[EmailStr, AfterValidator(_email), BeforeValidator(_email_input)]
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    BeforeValidator(_one_line),
]
Subject = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=250),
    BeforeValidator(_one_line),
]
Body = Annotated[
    str,
    StringConstraints(min_length=1, max_length=20_000, pattern=r"\S"),
    BeforeValidator(_multi_line),
]


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
    priority: TicketPriority = Field(
        default=TicketPriority.NORMAL,
        description="Set by staff; a customer's ticket always starts `normal` (another value "
        "from a customer is refused with 403: staff triage priority).",
    )
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
    offset: int = Field(default=0, ge=0, le=PAGE_OFFSET_MAX)
