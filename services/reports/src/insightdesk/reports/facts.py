"""What an event means for the reports' facts — pure translation, no I/O.

Every event becomes one :class:`FactChange`: the rows to upsert (the ticket's latest snapshot,
the lifecycle event, users, SLA outcomes, organizations) under the event's key. The key is a
digest of the event's name and content, so the same event delivered twice (a retried job, a
replayed publication) has the same key and the store applies it once.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from insightdesk.shared.contracts import (
    ClockState,
    Event,
    OrganizationCreated,
    OrganizationUpdated,
    SlaBreached,
    SlaClockChanged,
    SlaWarning,
    TicketAssigned,
    TicketClosed,
    TicketCreated,
    TicketMessageAdded,
    TicketPriorityChanged,
    TicketSnapshot,
    TicketStatusChanged,
    UserRef,
    UserRegistered,
)

SHAPES: tuple[tuple[str, type[Event]], ...] = (
    ("changed", OrganizationUpdated),
    ("organization", OrganizationCreated),
    ("user", UserRegistered),
    ("created_by", TicketCreated),
    ("message_id", TicketMessageAdded),
    ("old_status", TicketStatusChanged),
    ("assigned_by", TicketAssigned),
    ("old_priority", TicketPriorityChanged),
    ("ticket", TicketClosed),
)
"""The ticket and user events told apart by a field only they carry (a job does not carry the
event's name), the most specific first: every ticket event has ``ticket``, only
``ticket.closed`` has nothing else."""


def parse_event(data: Mapping[str, Any]) -> Event | None:
    """The ticket or user event ``data`` is (raises pydantic's ``ValidationError`` when it is
    malformed), or None for a body of no known shape."""
    for field_name, model in SHAPES:
        if field_name in data:
            return model.model_validate(data)
    return None


def event_key(event: Event) -> str:
    """A stable identity of ``event``: sha256 over its name and canonical JSON content."""
    body = event.model_dump_json(exclude={"schema_version"})
    return hashlib.sha256(f"{event.name}\n{body}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class OrganizationFact:
    id: uuid.UUID
    name: str | None = None
    time_zone: str | None = None
    locale: str | None = None
    authoritative: bool = False
    """True for ``organization.*`` events; False when an organization is only seen on a ticket
    (the row is then created with defaults and never overwritten)."""


@dataclass(frozen=True, slots=True)
class UserFact:
    id: uuid.UUID
    organization_id: uuid.UUID
    email: str
    name: str
    role: str


@dataclass(frozen=True, slots=True)
class TicketFact:
    id: uuid.UUID
    organization_id: uuid.UUID
    subject: str
    status: str
    priority: str
    customer_id: uuid.UUID
    customer_email: str
    customer_name: str
    assignee_id: uuid.UUID | None
    assignee_name: str | None
    created_at: datetime
    first_response_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None


@dataclass(frozen=True, slots=True)
class TicketEventFact:
    ticket_id: uuid.UUID
    organization_id: uuid.UUID
    kind: str
    actor_id: uuid.UUID | None = None
    actor_role: str | None = None
    old_value: str | None = None
    new_value: str | None = None


@dataclass(frozen=True, slots=True)
class SlaFact:
    ticket_id: uuid.UUID
    organization_id: uuid.UUID
    target: str
    due_at: datetime
    outcome: str
    """``due`` (the deadline only), ``warned``, ``breached`` or ``met``."""


@dataclass(frozen=True, slots=True)
class FactChange:
    key: str
    name: str
    occurred_at: datetime
    organization: OrganizationFact | None = None
    ticket: TicketFact | None = None
    ticket_event: TicketEventFact | None = None
    users: tuple[UserFact, ...] = ()
    slas: tuple[SlaFact, ...] = ()


def ticket_fact(snapshot: TicketSnapshot) -> TicketFact:
    assignee = snapshot.assignee
    return TicketFact(
        id=snapshot.id,
        organization_id=snapshot.organization_id,
        subject=snapshot.subject,
        status=snapshot.status.value,
        priority=snapshot.priority.value,
        customer_id=snapshot.customer.id,
        customer_email=snapshot.customer.email,
        customer_name=snapshot.customer.name,
        assignee_id=None if assignee is None else assignee.id,
        assignee_name=None if assignee is None else assignee.name,
        created_at=snapshot.created_at,
        first_response_at=snapshot.first_response_at,
        resolved_at=snapshot.resolved_at,
        closed_at=snapshot.closed_at,
    )


def _user(ref: UserRef, organization_id: uuid.UUID) -> UserFact:
    return UserFact(ref.id, organization_id, ref.email, ref.name, ref.role.value)


def _staff(refs: list[UserRef | None], organization_id: uuid.UUID) -> tuple[UserFact, ...]:
    """Agents and admins named on an event (they receive digests)."""
    found = {
        r.id: _user(r, organization_id) for r in refs if r is not None and r.role != "customer"
    }
    return tuple(found.values())


def facts_for(event: Event) -> FactChange | None:
    """The facts ``event`` changes, or None for an event the reports do not use."""
    key = event_key(event)
    if isinstance(event, OrganizationCreated | OrganizationUpdated):
        settings = event.organization
        org = OrganizationFact(
            settings.id, settings.name, settings.time_zone, settings.locale, authoritative=True
        )
        return FactChange(key, event.name, event.occurred_at, organization=org)
    if isinstance(event, UserRegistered):
        org = OrganizationFact(event.organization_id)
        return FactChange(
            key,
            event.name,
            event.occurred_at,
            organization=org,
            users=(_user(event.user, event.organization_id),),
        )
    if isinstance(event, SlaWarning | SlaBreached):
        return _sla(event, key)
    if isinstance(event, SlaClockChanged):
        return _clock(event, key)
    snapshot: TicketSnapshot | None = getattr(event, "ticket", None)
    if snapshot is None:
        return None
    org_id = snapshot.organization_id
    kind: TicketEventFact
    users: tuple[UserFact, ...] = ()
    if isinstance(event, TicketCreated):
        kind = TicketEventFact(
            snapshot.id,
            org_id,
            "created",
            event.created_by.id,
            event.created_by.role.value,
            new_value=snapshot.status.value,
        )
        users = _staff([event.created_by, snapshot.assignee], org_id)
    elif isinstance(event, TicketMessageAdded):
        kind = TicketEventFact(
            snapshot.id,
            org_id,
            "replied",
            event.author.id,
            event.author.role.value,
            new_value="first_response" if event.first_response else None,
        )
        users = _staff([event.author], org_id)
    elif isinstance(event, TicketStatusChanged):
        kind = TicketEventFact(
            snapshot.id,
            org_id,
            "status_changed",
            event.changed_by.id,
            event.changed_by.role.value,
            event.old_status.value,
            event.new_status.value,
        )
        users = _staff([event.changed_by], org_id)
    elif isinstance(event, TicketAssigned):
        kind = TicketEventFact(
            snapshot.id,
            org_id,
            "assigned",
            event.assigned_by.id,
            event.assigned_by.role.value,
            None if event.previous_assignee_id is None else str(event.previous_assignee_id),
            None if event.assignee is None else str(event.assignee.id),
        )
        users = _staff([event.assigned_by, event.assignee], org_id)
    elif isinstance(event, TicketPriorityChanged):
        kind = TicketEventFact(
            snapshot.id,
            org_id,
            "priority_changed",
            event.changed_by.id,
            event.changed_by.role.value,
            event.old_priority.value,
            event.new_priority.value,
        )
    elif isinstance(event, TicketClosed):
        kind = TicketEventFact(snapshot.id, org_id, "closed", new_value="closed")
    else:
        return None
    return FactChange(
        key,
        event.name,
        event.occurred_at,
        organization=OrganizationFact(org_id),
        ticket=ticket_fact(snapshot),
        ticket_event=kind,
        users=users,
    )


def target_key(target: str, cycle: int = 0) -> str:
    """The SLA outcome a (target, cycle) is recorded under: ``first_response``, or
    ``next_response#2`` for a repeating target's later cycles."""
    return target if cycle == 0 else f"{target}#{cycle}"


def _sla(event: SlaWarning | SlaBreached, key: str) -> FactChange:
    outcome = "breached" if isinstance(event, SlaBreached) else "warned"
    fact = SlaFact(
        event.ticket_id,
        event.organization_id,
        target_key(event.target, event.cycle),
        event.due_at,
        outcome,
    )
    return FactChange(
        key,
        event.name,
        event.occurred_at,
        organization=OrganizationFact(event.organization_id),
        slas=(fact,),
    )


def _clock(event: SlaClockChanged, key: str) -> FactChange:
    """Each target's deadline, and ``met`` once the SLA service says it was fulfilled."""
    facts = tuple(
        SlaFact(
            event.ticket_id,
            event.organization_id,
            target_key(t.target.value, t.cycle),
            t.due_at,
            "met" if t.state is ClockState.FULFILLED else "due",
        )
        for t in event.targets
        if t.due_at is not None
    )
    return FactChange(
        key,
        event.name,
        event.occurred_at,
        organization=OrganizationFact(event.organization_id),
        slas=facts,
    )
