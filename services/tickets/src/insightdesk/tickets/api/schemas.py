"""Response bodies of the HTTP API (requests are the use cases' commands)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from insightdesk.shared.contracts import (
    Role,
    TicketPriority,
    TicketSlaTarget,
    TicketStatus,
    UserRef,
)
from insightdesk.tickets.accounts import Registration
from insightdesk.tickets.handlers import TicketDetail
from insightdesk.tickets.models import Organization, User
from insightdesk.tickets.repository import MessageView, TicketView
from insightdesk.tickets.sla_models import TicketSlaRow


class Person(BaseModel):
    """Someone a ticket refers to."""

    id: uuid.UUID
    name: str
    email: str
    role: Role

    @classmethod
    def of(cls, ref: UserRef) -> Person:
        return cls(id=ref.id, name=ref.name, email=ref.email, role=ref.role)


class OrganizationOut(BaseModel):
    id: uuid.UUID
    name: str
    created_at: datetime
    time_zone: str
    locale: str
    auto_close_after_days: int
    updated_at: datetime | None = None

    @classmethod
    def of(cls, organization: Organization) -> OrganizationOut:
        return cls(
            id=organization.id,
            name=organization.name,
            created_at=organization.created_at,
            time_zone=organization.time_zone,
            locale=organization.locale,
            auto_close_after_days=organization.auto_close_after_days,
            updated_at=organization.updated_at,
        )


class UserOut(BaseModel):
    id: uuid.UUID
    organization_id: uuid.UUID
    email: str
    name: str
    role: Role
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            id=user.id,
            organization_id=user.organization_id,
            email=user.email,
            name=user.name,
            role=user.role,
            created_at=user.created_at,
        )


class UserCreated(BaseModel):
    user: UserOut
    api_token: str = Field(
        description="The user's API token (send as `Authorization: Bearer <token>`). "
        "Shown only in this response; only its hash is stored."
    )

    @classmethod
    def of(cls, registration: Registration) -> UserCreated:
        return cls(user=UserOut.of(registration.user), api_token=registration.api_token)


class OrganizationCreated(BaseModel):
    organization: OrganizationOut
    admin: UserOut
    api_token: str = Field(description="The admin's API token; shown only in this response.")

    @classmethod
    def of(cls, registration: Registration) -> OrganizationCreated:
        return cls(
            organization=OrganizationOut.of(registration.organization),
            admin=UserOut.of(registration.user),
            api_token=registration.api_token,
        )


class TicketSlaOut(BaseModel):
    """The ticket's SLA targets as the SLA service last reported them (at ``as_of``):
    per target its state, due time and the business minutes left then."""

    as_of: datetime
    breached: bool
    at_risk: bool
    targets: list[TicketSlaTarget]

    @classmethod
    def of(cls, row: TicketSlaRow | None) -> TicketSlaOut | None:
        if row is None:
            return None
        return cls(
            as_of=row.as_of,
            breached=row.breached,
            at_risk=row.at_risk,
            targets=[TicketSlaTarget.model_validate(t) for t in row.targets],
        )


class TicketOut(BaseModel):
    id: uuid.UUID
    organization_id: uuid.UUID
    subject: str
    status: TicketStatus
    priority: TicketPriority
    customer: Person
    assignee: Person | None
    created_at: datetime
    updated_at: datetime
    first_response_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    archived_at: datetime | None = None
    sla: TicketSlaOut | None = None

    @classmethod
    def of(cls, view: TicketView) -> TicketOut:
        return cls(**_ticket_fields(view))


def _ticket_fields(view: TicketView) -> dict[str, Any]:
    t = view.ticket
    return {
        "id": t.id,
        "organization_id": t.organization_id,
        "subject": t.subject,
        "status": t.status,
        "priority": t.priority,
        "customer": Person.of(view.customer),
        "assignee": Person.of(view.assignee) if view.assignee else None,
        "created_at": t.created_at,
        "updated_at": t.updated_at,
        "first_response_at": t.first_response_at,
        "resolved_at": t.resolved_at,
        "closed_at": t.closed_at,
        "archived_at": t.archived_at,
        "sla": TicketSlaOut.of(view.sla),
    }


class MessageOut(BaseModel):
    id: uuid.UUID
    ticket_id: uuid.UUID
    author: Person
    body: str
    created_at: datetime

    @classmethod
    def of(cls, view: MessageView) -> MessageOut:
        m = view.message
        return cls(
            id=m.id,
            ticket_id=m.ticket_id,
            author=Person.of(view.author),
            body=m.body,
            created_at=m.created_at,
        )


class TicketDetailOut(TicketOut):
    messages: list[MessageOut]
    participants: list[Person]

    @classmethod
    def of_detail(cls, detail: TicketDetail) -> TicketDetailOut:
        return cls(
            **_ticket_fields(detail.view),
            messages=[MessageOut.of(m) for m in detail.messages],
            participants=[Person.of(p) for p in detail.participants],
        )


class TicketPage(BaseModel):
    items: list[TicketOut]
    limit: int
    offset: int


class Problem(BaseModel):
    """The body of an error response."""

    detail: str
