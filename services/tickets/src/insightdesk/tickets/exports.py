"""Ticket exports: an agent or admin asks for the ticket list (filters, date range, CSV or
XLSX); the reports service builds the file from its own facts and mails a signed link. Here the
request is recorded and the ``ExportReport`` command sent in the same transaction, and the
reports service's ``report.export_ready`` / ``report.export_failed`` events set the outcome
(:mod:`insightdesk.tickets.export_outcomes`, consumed by the worker process)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel, Field
from sqlalchemy import DateTime
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Column, SQLModel, select
from sqlmodel import Field as SqlField
from sqlmodel.ext.asyncio.session import AsyncSession

from insightdesk.shared.contracts import (
    Command,
    ExportFilters,
    ExportFormat,
    ExportReport,
)
from insightdesk.tickets.errors import NotFound
from insightdesk.tickets.permissions import Actor, require_staff

SCHEMA = "tickets"


class ExportRequest(SQLModel, table=True):
    __tablename__ = "exports"
    __table_args__ = {"schema": SCHEMA}

    id: uuid.UUID = SqlField(primary_key=True)
    organization_id: uuid.UUID
    requested_by: uuid.UUID
    format: str
    filters: dict[str, Any] = SqlField(default_factory=dict, sa_column=Column(JSONB))
    state: str = "requested"
    rows: int | None = None
    download_url: str | None = None
    expires_at: datetime | None = SqlField(default=None, sa_type=DateTime(timezone=True))
    error: str | None = None
    requested_at: datetime = SqlField(sa_type=DateTime(timezone=True))
    finished_at: datetime | None = SqlField(default=None, sa_type=DateTime(timezone=True))


class RequestExport(ExportFilters):
    """``POST /reports/exports``: the filters, the format and (optionally) the link's life."""

    format: ExportFormat = ExportFormat.CSV
    link_ttl_hours: int | None = Field(default=None, ge=1, le=168)
    csv_bom: bool = False


class ExportOut(BaseModel):
    id: uuid.UUID
    state: str
    format: str
    requested_at: datetime
    rows: int | None = None
    download_url: str | None = None
    expires_at: datetime | None = None
    error: str | None = None

    @classmethod
    def of(cls, row: ExportRequest) -> ExportOut:
        return cls(
            id=row.id,
            state=row.state,
            format=row.format,
            requested_at=row.requested_at,
            rows=row.rows,
            download_url=row.download_url,
            expires_at=row.expires_at,
            error=row.error,
        )


class CommandSender(Protocol):
    async def send_command(self, command: Command) -> uuid.UUID | None: ...


async def request_export(
    body: RequestExport,
    *,
    actor: Actor,
    session: AsyncSession,
    sender: CommandSender,
    now: datetime,
    locale: str = "en",
) -> ExportRequest:
    """Record the request and send ``ExportReport`` in the caller's (uncommitted) transaction."""
    require_staff(actor, "export tickets")
    filters = ExportFilters.model_validate(body.model_dump(include=set(ExportFilters.model_fields)))
    row = ExportRequest(
        id=uuid.uuid4(),
        organization_id=actor.organization_id,
        requested_by=actor.id,
        format=body.format.value,
        filters=filters.model_dump(mode="json", exclude={"schema_version"}),
        requested_at=now,
    )
    session.add(row)
    await session.flush()
    await sender.send_command(
        ExportReport(
            export_id=row.id,
            organization_id=actor.organization_id,
            requested_by=actor.id,
            requester_email=actor.email,
            requester_name=actor.name,
            format=body.format,
            filters=filters,
            locale=locale,
            link_ttl_hours=body.link_ttl_hours,
            csv_bom=body.csv_bom,
        )
    )
    return row


async def get_export(export_id: uuid.UUID, *, actor: Actor, session: AsyncSession) -> ExportRequest:
    require_staff(actor, "see exports")
    row = (
        await session.exec(
            select(ExportRequest).where(
                ExportRequest.id == export_id,
                ExportRequest.organization_id == actor.organization_id,
            )
        )
    ).first()
    if row is None:
        raise NotFound(f"no export {export_id}")
    return row
