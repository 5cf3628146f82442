"""Digest and weekly-report rules — pure functions that take ``now``.

Which organizations are due on an hourly tick (their local hour is the digest hour, so an
organization in Pacific/Auckland and one in America/New_York each get theirs at their own 08:00,
daylight saving or not), which local period a report covers, and how the figures the store
computed become a mail context.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from insightdesk.shared.contracts import AgentRow, CountRow, SlaRow, TrendRow

DAILY = "daily-digest"
WEEKLY = "weekly-report"
KINDS = (DAILY, WEEKLY)
AGE_BUCKETS = ("< 1 day", "1-3 days", "3-7 days", "> 7 days")
STATUSES = ("open", "pending")
RESPONSE_BUCKETS = ("< 15 min", "15-60 min", "1-4 h", "4-24 h", "> 24 h")


@dataclass(frozen=True, slots=True)
class Organization:
    id: uuid.UUID
    name: str
    time_zone: str = "UTC"
    locale: str = "en"

    @property
    def zone(self) -> ZoneInfo:
        return zone(self.time_zone)


def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; an unknown name falls back to UTC (reports never stall on it)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


@dataclass(frozen=True, slots=True)
class Period:
    """Local days ``[first, first + days)`` of one organization, as UTC instants."""

    first: date
    days: int
    start: datetime
    end: datetime

    @property
    def last(self) -> date:
        return self.first + timedelta(days=self.days - 1)


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def period(first: date, days: int, tz: ZoneInfo) -> Period:
    """The local days from ``first`` as a UTC window (a DST day is 23 or 25 hours long)."""
    return Period(
        first, days, local_midnight(first, tz), local_midnight(first + timedelta(days), tz)
    )


def is_due(now: datetime, tz: ZoneInfo, hour: int) -> bool:
    """True on the hourly tick that falls in the local hour ``hour`` — or, on a day the clocks
    jump over that hour (a digest hour of 02:00 on a spring-forward night), on the first tick
    after the jump. When the hour repeats (autumn), both ticks are due; the per-organization
    job id and the run record make the second one send nothing."""
    local = now.astimezone(tz)
    if local.hour == hour:
        return True
    before = (now - timedelta(hours=1)).astimezone(tz)
    return before.date() == local.date() and before.hour < hour < local.hour


@dataclass(frozen=True, slots=True)
class ReportPlan:
    kind: str
    organization_id: uuid.UUID
    period_start: date

    @property
    def job_id(self) -> uuid.UUID:
        """One job per (kind, organization, period): a second tick's send is refused."""
        return uuid.uuid5(
            uuid.NAMESPACE_URL,
            f"insightdesk:reports:{self.kind}:{self.organization_id}:{self.period_start}",
        )


def plan(
    kind: str, now: datetime, organizations: Iterable[Organization], *, hour: int
) -> list[ReportPlan]:
    """The per-organization jobs one hourly tick of ``kind`` creates.

    ``daily-digest``: organizations whose local time is in ``hour``; the period is their
    yesterday. ``weekly-report``: the same on their local Monday; the period is the seven days
    before it.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown report kind {kind!r}")
    plans = []
    for org in organizations:
        local = now.astimezone(org.zone)
        if not is_due(now, org.zone, hour):
            continue
        today = local.date()
        if kind == DAILY:
            plans.append(ReportPlan(kind, org.id, today - timedelta(days=1)))
        elif local.weekday() == 0:
            plans.append(ReportPlan(kind, org.id, today - timedelta(days=7)))
    return plans


def report_period(kind: str, first: date, tz: ZoneInfo) -> Period:
    return period(first, 1 if kind == DAILY else 7, tz)


@dataclass(frozen=True, slots=True)
class Figures:
    """What the store computed for one organization and period."""

    new: int = 0
    solved: int = 0
    reopened: int = 0
    closed: int = 0
    unassigned: int = 0
    backlog_by_status: dict[str, int] = field(default_factory=dict)
    backlog_by_age: dict[str, int] = field(default_factory=dict)
    first_response_median: float | None = None
    first_response_p90: float | None = None
    resolution_median: float | None = None
    resolution_p90: float | None = None
    sla: dict[str, tuple[int, int]] = field(default_factory=dict)
    """target → (met, breached) of the targets due in the period."""
    sla_breaches: int = 0
    at_risk: int = 0
    agents: tuple[AgentRow, ...] = ()

    @property
    def activity(self) -> bool:
        """Anything happened in the period (a digest without activity may be skipped)."""
        return bool(
            self.new
            or self.solved
            or self.reopened
            or self.closed
            or self.sla_breaches
            or any(a.replies for a in self.agents)
        )


def achievement(met: int, breached: int) -> float | None:
    total = met + breached
    return None if total == 0 else round(100.0 * met / total, 1)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def figures_context(org: Organization, span: Period, figures: Figures) -> dict[str, object]:
    """The :class:`DigestFiguresContext` fields for ``figures``."""
    label = (
        span.first.isoformat()
        if span.days == 1
        else f"{span.first.isoformat()} to {span.last.isoformat()}"
    )
    return {
        "organization_name": org.name or str(org.id),
        "period_label": label,
        "new": figures.new,
        "solved": figures.solved,
        "reopened": figures.reopened,
        "closed": figures.closed,
        "unassigned": figures.unassigned,
        "backlog_by_status": [
            CountRow(label=s, count=figures.backlog_by_status.get(s, 0)) for s in STATUSES
        ],
        "backlog_by_age": [
            CountRow(label=b, count=figures.backlog_by_age.get(b, 0)) for b in AGE_BUCKETS
        ],
        "first_response_median_minutes": _round(figures.first_response_median),
        "first_response_p90_minutes": _round(figures.first_response_p90),
        "resolution_median_minutes": _round(figures.resolution_median),
        "resolution_p90_minutes": _round(figures.resolution_p90),
        "sla": [
            SlaRow(target=t, met=m, breached=b, achievement_pct=achievement(m, b))
            for t, (m, b) in sorted(figures.sla.items())
        ],
        "sla_breaches": figures.sla_breaches,
        "at_risk": figures.at_risk,
        "agents": list(figures.agents),
    }


def trend_rows(rows: Sequence[tuple[date, int, int]]) -> list[TrendRow]:
    return [TrendRow(day=d, new=n, solved=s) for d, n, s in rows]
