"""Ticket exports: ``POST /reports/exports`` (202 with the export's id) and
``GET /reports/exports/{id}`` (its state). Agents and admins only."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, status

from insightdesk.tickets.api.accounts import AUTH_ERRORS
from insightdesk.tickets.api.dependencies import Caller, Unit
from insightdesk.tickets.api.schemas import Problem
from insightdesk.tickets.exports import ExportOut, RequestExport, get_export, request_export

FORBIDDEN: dict[int | str, dict[str, Any]] = {
    403: {"model": Problem, "description": "Customers cannot export"}
}

router = APIRouter(prefix="/reports/exports", tags=["reports"], responses=AUTH_ERRORS)


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Export the organization's tickets (CSV or XLSX); the link arrives by mail",
    responses=FORBIDDEN,
)
async def create_export(body: RequestExport, caller: Caller, unit: Unit) -> ExportOut:
    """Tickets created in ``[created_from, created_to)`` matching the filters. The export is
    built by the reports service; the requester gets a ``report-ready`` mail with a signed
    link (24 hours unless ``link_ttl_hours`` says otherwise, at most 7 days)."""
    row = await request_export(
        body, actor=caller, session=unit.session, sender=unit.outbox, now=unit.now
    )
    await unit.commit()
    return ExportOut.of(row)


@router.get(
    "/{export_id}",
    summary="An export's state: requested, ready (with its link) or failed",
    responses={404: {"model": Problem, "description": "No such export"}, **FORBIDDEN},
)
async def read_export(export_id: uuid.UUID, caller: Caller, unit: Unit) -> ExportOut:
    return ExportOut.of(await get_export(export_id, actor=caller, session=unit.session))
