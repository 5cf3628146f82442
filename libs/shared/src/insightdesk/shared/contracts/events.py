"""Domain events, named ``<aggregate>.<past-tense verb>``."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import ClassVar

from insightdesk.shared.contracts.base import AwareDatetime, Contract, Event


class Role(StrEnum):
    ADMIN = "admin"
    AGENT = "agent"
    CUSTOMER = "customer"


class TicketStatus(StrEnum):
    OPEN = "open"
    PENDING = "pending"
    RESOLVED = "resolved"
    CLOSED = "closed"


class TicketPriority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class UserRef(Contract):
    id: uuid.UUID
    email: str
    name: str
    role: Role


class TicketSnapshot(Contract):
    """The state of a ticket when the event happened."""

    id: uuid.UUID
    organization_id: uuid.UUID
    subject: str
    status: TicketStatus
    priority: TicketPriority
    customer: UserRef
    assignee: UserRef | None = None
    created_at: AwareDatetime
    first_response_at: AwareDatetime | None = None
    resolved_at: AwareDatetime | None = None
    closed_at: AwareDatetime | None = None


class UserRegistered(Event):
    name: ClassVar[str] = "user.registered"
    user: UserRef
    organization_id: uuid.UUID
    organization_name: str


class TicketCreated(Event):
    name: ClassVar[str] = "ticket.created"
    ticket: TicketSnapshot
    created_by: UserRef


class TicketMessageAdded(Event):
    name: ClassVar[str] = "ticket.message_added"
    ticket: TicketSnapshot
    message_id: uuid.UUID
    author: UserRef
    body: str
    first_response: bool = False
    """True when this is the first reply of an agent to the customer (SLA first response)."""
    participants: list[UserRef] = []


class TicketStatusChanged(Event):
    name: ClassVar[str] = "ticket.status_changed"
    ticket: TicketSnapshot
    old_status: TicketStatus
    new_status: TicketStatus
    changed_by: UserRef
    participants: list[UserRef] = []


class TicketAssigned(Event):
    name: ClassVar[str] = "ticket.assigned"
    ticket: TicketSnapshot
    assignee: UserRef | None
    previous_assignee_id: uuid.UUID | None = None
    assigned_by: UserRef


class TicketPriorityChanged(Event):
    name: ClassVar[str] = "ticket.priority_changed"
    ticket: TicketSnapshot
    old_priority: TicketPriority
    new_priority: TicketPriority
    changed_by: UserRef


class TicketClosed(Event):
    name: ClassVar[str] = "ticket.closed"
    ticket: TicketSnapshot
    reason: str = "manual"
    """``manual`` (someone closed it) or ``auto`` (resolved longer than the organization's
    ``auto_close_after_days``)."""


class EmailDelivered(Event):
    name: ClassVar[str] = "email.delivered"
    idempotency_key: str
    to: str
    template: str
    provider: str
    provider_message_id: str | None = None


class EmailFailed(Event):
    name: ClassVar[str] = "email.failed"
    idempotency_key: str
    to: str
    template: str
    error: str


class SlaWarning(Event):
    """A ticket's SLA target (``first_response``, ``next_response``, ``periodic_update``,
    ``resolution``) reached its warning threshold; once per (target, cycle, deadline version)."""

    name: ClassVar[str] = "sla.warning"
    ticket_id: uuid.UUID
    organization_id: uuid.UUID
    target: str
    due_at: AwareDatetime
    cycle: int = 0
    deadline_version: int = 0
    remaining_minutes: float | None = None


class SlaBreached(Event):
    """A target was missed (``escalation_level`` 0, recorded once per target and cycle), or
    is still unmet ``after_minutes`` later (escalation levels 1-4, each once per deadline
    version). ``notify`` names who is mailed: ``assignee`` (or every agent when unassigned),
    ``agents``, ``admins``."""

    name: ClassVar[str] = "sla.breached"
    ticket_id: uuid.UUID
    organization_id: uuid.UUID
    target: str
    due_at: AwareDatetime
    cycle: int = 0
    deadline_version: int = 0
    escalation_level: int = 0
    notify: list[str] = ["assignee", "admins"]


ALL_EVENTS: tuple[type[Event], ...] = (
    UserRegistered,
    TicketCreated,
    TicketMessageAdded,
    TicketStatusChanged,
    TicketAssigned,
    TicketPriorityChanged,
    TicketClosed,
    EmailDelivered,
    EmailFailed,
    SlaWarning,
    SlaBreached,
)
