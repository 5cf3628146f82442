"""SQLModel tables of the ``tickets`` schema (created by the SQL migrations in ``migrations/``;
these classes only map them for the service's own CRUD).

The single-column foreign keys declared here mirror the database's and let the unit of work
insert parents before children; the database additionally enforces, through composite keys,
that every reference stays inside one organization.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import DateTime, Dialect, Text, TypeDecorator
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from insightdesk.shared.contracts import Role, TicketPriority, TicketStatus

SCHEMA = "tickets"


class TextEnum(TypeDecorator[StrEnum]):
    """A ``StrEnum`` stored as ``text`` (the schema checks the allowed values), read back as the
    enum member so model attributes are what their annotations say."""

    impl = Text
    cache_ok = True

    def __init__(self, enum: type[StrEnum]) -> None:
        super().__init__()
        self.enum = enum

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: Any, dialect: Dialect) -> StrEnum | None:
        return None if value is None else self.enum(value)


def _instant(*, nullable: bool = False) -> Any:
    return Field(default=None, sa_type=DateTime(timezone=True), nullable=nullable)


class Organization(SQLModel, table=True):
    __tablename__ = "organizations"
    __table_args__ = {"schema": SCHEMA}

    id: uuid.UUID = Field(primary_key=True)
    name: str
    created_at: datetime = Field(sa_type=DateTime(timezone=True))
    time_zone: str = "UTC"
    locale: str = "en"
    auto_close_after_days: int = 7
    updated_at: datetime | None = _instant(nullable=True)


class User(SQLModel, table=True):
    __tablename__ = "users"
    __table_args__ = {"schema": SCHEMA}

    id: uuid.UUID = Field(primary_key=True)
    organization_id: uuid.UUID = Field(foreign_key=f"{SCHEMA}.organizations.id")
    email: str
    name: str
    role: Role = Field(sa_type=TextEnum(Role))
    api_token_hash: str
    created_at: datetime = Field(sa_type=DateTime(timezone=True))


class Ticket(SQLModel, table=True):
    __tablename__ = "tickets"
    __table_args__ = {"schema": SCHEMA}

    id: uuid.UUID = Field(primary_key=True)
    organization_id: uuid.UUID = Field(foreign_key=f"{SCHEMA}.organizations.id")
    subject: str
    status: TicketStatus = Field(sa_type=TextEnum(TicketStatus))
    priority: TicketPriority = Field(sa_type=TextEnum(TicketPriority))
    customer_id: uuid.UUID = Field(foreign_key=f"{SCHEMA}.users.id")
    assignee_id: uuid.UUID | None = Field(default=None, foreign_key=f"{SCHEMA}.users.id")
    created_at: datetime = Field(sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(sa_type=DateTime(timezone=True))
    first_response_at: datetime | None = _instant(nullable=True)
    resolved_at: datetime | None = _instant(nullable=True)
    closed_at: datetime | None = _instant(nullable=True)
    archived_at: datetime | None = _instant(nullable=True)


class Message(SQLModel, table=True):
    __tablename__ = "messages"
    __table_args__ = {"schema": SCHEMA}

    id: uuid.UUID = Field(primary_key=True)
    organization_id: uuid.UUID
    ticket_id: uuid.UUID = Field(foreign_key=f"{SCHEMA}.tickets.id")
    author_id: uuid.UUID = Field(foreign_key=f"{SCHEMA}.users.id")
    body: str
    created_at: datetime = Field(sa_type=DateTime(timezone=True))


class Participant(SQLModel, table=True):
    __tablename__ = "participants"
    __table_args__ = {"schema": SCHEMA}

    ticket_id: uuid.UUID = Field(primary_key=True, foreign_key=f"{SCHEMA}.tickets.id")
    user_id: uuid.UUID = Field(primary_key=True, foreign_key=f"{SCHEMA}.users.id")
    organization_id: uuid.UUID
    added_at: datetime = Field(sa_type=DateTime(timezone=True))


class PendingNotification(SQLModel, table=True):
    """A ticket update not yet mailed to ``recipient_id`` (see ``notifications``)."""

    __tablename__ = "pending_notifications"
    __table_args__ = {"schema": SCHEMA}

    id: int | None = Field(default=None, primary_key=True)
    organization_id: uuid.UUID
    ticket_id: uuid.UUID = Field(foreign_key=f"{SCHEMA}.tickets.id")
    recipient_id: uuid.UUID = Field(foreign_key=f"{SCHEMA}.users.id")
    item: dict[str, Any] = Field(sa_type=JSONB)
    created_at: datetime = Field(sa_type=DateTime(timezone=True))
