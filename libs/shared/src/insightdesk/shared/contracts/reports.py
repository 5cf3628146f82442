"""Contracts of the reports service: the export command and its outcome events, and the
contexts of the mails it sends (``daily-digest``, ``weekly-report``, ``report-ready``).

Digest contexts carry small tables (lists of flat rows); every row model, like every contract,
only ever gains fields with defaults.
"""

from __future__ import annotations

import uuid
from datetime import date
from enum import StrEnum
from typing import ClassVar

from pydantic import Field, model_validator

from insightdesk.shared.contracts.base import AwareDatetime, Command, Contract, Event
from insightdesk.shared.contracts.events import TicketPriority, TicketStatus


class ExportFormat(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"


class ExportFilters(Contract):
    """Which tickets an export lists: created in ``[created_from, created_to)`` and matching
    every filter given (an empty list means any)."""

    created_from: AwareDatetime | None = None
    created_to: AwareDatetime | None = None
    statuses: list[TicketStatus] = []
    priorities: list[TicketPriority] = []
    assignee_id: uuid.UUID | None = None
    unassigned_only: bool = False

    @model_validator(mode="after")
    def _range(self) -> ExportFilters:
        if (
            self.created_from is not None
            and self.created_to is not None
            and self.created_to <= self.created_from
        ):
            raise ValueError("created_to must be after created_from")
        return self


class ExportReport(Command):
    """Write the ticket list of ``organization_id`` matching ``filters`` to storage and mail
    ``requester_email`` a signed download link."""

    queue: ClassVar[str] = "reports-export"
    export_id: uuid.UUID
    organization_id: uuid.UUID
    requested_by: uuid.UUID
    requester_email: str
    requester_name: str = ""
    format: ExportFormat = ExportFormat.CSV
    filters: ExportFilters = ExportFilters()
    locale: str = "en"
    link_ttl_hours: int | None = Field(default=None, ge=1, le=168)
    """How long the download link lives (default: the reports service's setting, 24 h)."""
    csv_bom: bool = False
    """Start the CSV with a UTF-8 byte-order mark (what Excel needs to guess UTF-8)."""


class ReportExportReady(Event):
    name: ClassVar[str] = "report.export_ready"
    export_id: uuid.UUID
    organization_id: uuid.UUID
    rows: int
    size_bytes: int
    download_url: str
    expires_at: AwareDatetime


class ReportExportFailed(Event):
    name: ClassVar[str] = "report.export_failed"
    export_id: uuid.UUID
    organization_id: uuid.UUID
    error: str


# --- mail contexts ------------------------------------------------------------------------------


class AgentRow(Contract):
    name: str
    open_assigned: int = 0
    replies: int = 0
    solved: int = 0


class CountRow(Contract):
    label: str
    count: int


class SlaRow(Contract):
    target: str
    met: int = 0
    breached: int = 0
    achievement_pct: float | None = None


class TrendRow(Contract):
    day: date
    new: int = 0
    solved: int = 0


class DigestFiguresContext(Contract):
    """The figures a digest or weekly report shows (one period)."""

    organization_name: str
    period_label: str
    new: int
    solved: int
    reopened: int
    closed: int
    unassigned: int
    backlog_by_status: list[CountRow] = []
    backlog_by_age: list[CountRow] = []
    first_response_median_minutes: float | None = None
    first_response_p90_minutes: float | None = None
    resolution_median_minutes: float | None = None
    resolution_p90_minutes: float | None = None
    sla: list[SlaRow] = []
    sla_breaches: int = 0
    at_risk: int = 0
    agents: list[AgentRow] = []


class DailyDigestContext(DigestFiguresContext):
    """``daily-digest``: yesterday in the organization's time zone, one mail per agent."""

    recipient_name: str


class WeeklyReportContext(DigestFiguresContext):
    """``weekly-report``: the last seven days, with week-over-week deltas (this week minus the
    one before), the per-day trend and two inline charts (``cid:`` references)."""

    recipient_name: str
    delta_new: int = 0
    delta_solved: int = 0
    delta_reopened: int = 0
    delta_closed: int = 0
    trend: list[TrendRow] = []
    volume_chart_cid: str | None = None
    response_chart_cid: str | None = None


class ReportReadyContext(Contract):
    """``report-ready``: an export is ready to download until ``expires_at``."""

    recipient_name: str
    export_id: str
    format: str
    rows: int
    download_url: str
    expires_at: str
