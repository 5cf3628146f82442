"""SQLModel tables of the SLA configuration and each ticket's reported SLA targets (created by
``migrations/0003_sla.sql``; these classes only map them)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Column, DateTime
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from insightdesk.tickets.models import SCHEMA


def _json() -> Any:
    return Field(sa_column=Column(JSONB, nullable=False))


class BusinessCalendarRow(SQLModel, table=True):
    __tablename__ = "business_calendars"
    __table_args__ = {"schema": SCHEMA}

    id: uuid.UUID = Field(primary_key=True)
    organization_id: uuid.UUID
    name: str
    config: dict[str, Any] = _json()
    version: int = 1
    created_at: datetime = Field(sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(sa_type=DateTime(timezone=True))


class SlaPolicyRow(SQLModel, table=True):
    __tablename__ = "sla_policies"
    __table_args__ = {"schema": SCHEMA}

    id: uuid.UUID = Field(primary_key=True)
    organization_id: uuid.UUID
    name: str
    position: int = 0
    is_default: bool = False
    calendar_id: uuid.UUID | None = None
    config: dict[str, Any] = _json()
    version: int = 1
    created_at: datetime = Field(sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(sa_type=DateTime(timezone=True))


class TicketSlaRow(SQLModel, table=True):
    __tablename__ = "ticket_sla"
    __table_args__ = {"schema": SCHEMA}

    ticket_id: uuid.UUID = Field(primary_key=True)
    organization_id: uuid.UUID
    sequence: int
    targets: list[dict[str, Any]] = Field(sa_column=Column(JSONB, nullable=False))
    breached: bool
    at_risk: bool
    as_of: datetime = Field(sa_type=DateTime(timezone=True))
