"""SLA contracts: business calendars and SLA policies (configured in tickets, copied by the SLA
service through ``business_calendar.changed`` / ``sla_policy.changed``), and the SLA service's
``sla.clock_changed`` (each ticket's current targets, event-carried state for tickets).

``sla.warning`` and ``sla.breached`` live in :mod:`insightdesk.shared.contracts.events`.

Validation here is what needs no data: a known IANA zone, ``HH:MM`` times, intervals that do
not overlap in the weekly cycle (an interval whose end is not after its start runs past
midnight), at most four escalation levels. Whether a holiday country exists is checked by the
tickets API (it has the ``holidays`` package).
"""

from __future__ import annotations

import re
import uuid
from datetime import date
from enum import StrEnum
from itertools import pairwise
from typing import ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from insightdesk.shared.contracts.base import AwareDatetime, Contract, Event
from insightdesk.shared.contracts.events import TicketPriority, TicketStatus

MINUTES_PER_DAY = 24 * 60
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")


class Weekday(StrEnum):
    MONDAY = "monday"
    TUESDAY = "tuesday"
    WEDNESDAY = "wednesday"
    THURSDAY = "thursday"
    FRIDAY = "friday"
    SATURDAY = "saturday"
    SUNDAY = "sunday"

    @property
    def number(self) -> int:
        """Monday = 0, as ``date.weekday()``."""
        return list(Weekday).index(self)


def _minutes(value: str) -> int:
    hours, minutes = value.split(":")
    return int(hours) * 60 + int(minutes)


class OpeningInterval(Contract):
    """Local wall-clock ``start``-``end`` (``HH:MM``; ``24:00`` allowed as an end). An end not
    after the start means the interval runs past midnight into the next day."""

    start: str
    end: str

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        if not _HHMM.fullmatch(value):
            raise ValueError(f"not a time of day HH:MM: {value!r}")
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> OpeningInterval:
        if self.start == "24:00":
            raise ValueError("an interval cannot start at 24:00")
        return self

    def span(self) -> tuple[int, int]:
        """Minutes since the start day's midnight; the end may pass 1440."""
        start, end = _minutes(self.start), _minutes(self.end)
        if end <= start:
            end += MINUTES_PER_DAY
        return start, end


def _overlap(spans: list[tuple[int, int, str]], *, cyclic: bool) -> str | None:
    """The first pair of overlapping spans (by label), or None."""
    spans = sorted(spans)
    if cyclic:  # the week wraps: Sunday's 22:00-02:00 meets Monday's 01:00
        week = 7 * MINUTES_PER_DAY
        spans = spans + [(s + week, e + week, label) for s, e, label in spans]
    for (_, end, a), (start, _, b) in pairwise(spans):
        if start < end:
            return f"{a} overlaps {b}"
    return None


class DayOverride(Contract):
    """A date with its own hours (a partial day, or opening on a holiday); no intervals means
    closed all day."""

    date: date
    intervals: list[OpeningInterval] = []

    @model_validator(mode="after")
    def _no_overlap(self) -> DayOverride:
        spans = [(*i.span(), f"{self.date} {i.start}-{i.end}") for i in self.intervals]
        if problem := _overlap(spans, cyclic=False):
            raise ValueError(problem)
        return self


class BusinessCalendarConfig(Contract):
    """Opening hours of a business calendar."""

    name: str = Field(min_length=1, max_length=200)
    time_zone: str = "UTC"
    hours: dict[Weekday, list[OpeningInterval]] = {}
    holiday_country: str | None = Field(default=None, min_length=2, max_length=3)
    holiday_subdivision: str | None = None
    custom_holidays: list[date] = []
    overrides: list[DayOverride] = []

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value

    @field_validator("hours")
    @classmethod
    def _week_without_overlap(
        cls, value: dict[Weekday, list[OpeningInterval]]
    ) -> dict[Weekday, list[OpeningInterval]]:
        spans = []
        for day, intervals in value.items():
            base = day.number * MINUTES_PER_DAY
            for i in intervals:
                start, end = i.span()
                spans.append((base + start, base + end, f"{day.value} {i.start}-{i.end}"))
        if problem := _overlap(spans, cyclic=True):
            raise ValueError(problem)
        return value

    @field_validator("overrides")
    @classmethod
    def _one_override_per_date(cls, value: list[DayOverride]) -> list[DayOverride]:
        seen: set[date] = set()
        for override in value:
            if override.date in seen:
                raise ValueError(f"two overrides for {override.date}")
            seen.add(override.date)
        return value

    @model_validator(mode="after")
    def _subdivision_needs_country(self) -> BusinessCalendarConfig:
        if self.holiday_subdivision is not None and self.holiday_country is None:
            raise ValueError("holiday_subdivision needs holiday_country")
        return self


class SlaTargetKind(StrEnum):
    FIRST_RESPONSE = "first_response"
    NEXT_RESPONSE = "next_response"
    PERIODIC_UPDATE = "periodic_update"
    RESOLUTION = "resolution"


class TimeMode(StrEnum):
    BUSINESS = "business"
    CALENDAR = "calendar"


class TargetSpec(Contract):
    minutes: int = Field(gt=0, le=366 * 24 * 60)
    mode: TimeMode = TimeMode.BUSINESS


class PriorityTargets(Contract):
    """The targets for tickets of one priority; a missing target is not measured."""

    priority: TicketPriority
    first_response: TargetSpec | None = None
    next_response: TargetSpec | None = None
    periodic_update: TargetSpec | None = None
    resolution: TargetSpec | None = None

    def get(self, kind: SlaTargetKind) -> TargetSpec | None:
        spec: TargetSpec | None = getattr(self, kind.value)
        return spec


class WarningRule(Contract):
    """When to warn before a deadline: at ``percent_elapsed`` of the target, or
    ``minutes_before`` it (in the target's own time) — exactly one."""

    percent_elapsed: int | None = Field(default=80, ge=1, le=99)
    minutes_before: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _exactly_one(self) -> WarningRule:
        if (self.percent_elapsed is None) == (self.minutes_before is None):
            raise ValueError("give exactly one of percent_elapsed and minutes_before")
        return self


class Recipient(StrEnum):
    ASSIGNEE = "assignee"
    """The assignee, or every agent of the organization when the ticket is unassigned."""
    AGENTS = "agents"
    ADMINS = "admins"


class EscalationLevel(Contract):
    """Mailed ``after_minutes`` (calendar time) after the breach, if the target is still unmet."""

    after_minutes: int = Field(ge=1, le=30 * 24 * 60)
    notify: list[Recipient] = [Recipient.ADMINS]


class PolicyConditions(Contract):
    """Which tickets a policy applies to; an empty list matches anything."""

    priorities: list[TicketPriority] = []
    customer_ids: list[uuid.UUID] = []

    def matches(self, priority: TicketPriority, customer_id: uuid.UUID) -> bool:
        return (not self.priorities or priority in self.priorities) and (
            not self.customer_ids or customer_id in self.customer_ids
        )


class SlaPolicyConfig(Contract):
    """An SLA policy. Policies are tried by ``position`` (lowest first); the first whose
    conditions match applies, else the organization's default policy."""

    name: str = Field(min_length=1, max_length=200)
    position: int = Field(default=0, ge=0)
    is_default: bool = False
    conditions: PolicyConditions = PolicyConditions()
    calendar_id: uuid.UUID | None = None
    """Business hours for targets in business time; None means 24x7."""
    targets: list[PriorityTargets] = []
    pause_statuses: list[TicketStatus] = [TicketStatus.PENDING]
    warning: WarningRule = WarningRule()
    escalation: list[EscalationLevel] = Field(default=[], max_length=4)

    @field_validator("targets")
    @classmethod
    def _one_per_priority(cls, value: list[PriorityTargets]) -> list[PriorityTargets]:
        seen: set[TicketPriority] = set()
        for targets in value:
            if targets.priority in seen:
                raise ValueError(f"two target sets for priority {targets.priority.value}")
            seen.add(targets.priority)
        return value

    @field_validator("escalation")
    @classmethod
    def _ascending(cls, value: list[EscalationLevel]) -> list[EscalationLevel]:
        delays = [level.after_minutes for level in value]
        if delays != sorted(set(delays)):
            raise ValueError("escalation levels need strictly increasing after_minutes")
        return value

    @field_validator("pause_statuses")
    @classmethod
    def _pausable(cls, value: list[TicketStatus]) -> list[TicketStatus]:
        if TicketStatus.OPEN in value:
            raise ValueError("an open ticket's clocks cannot be paused")
        return value

    def targets_for(self, priority: TicketPriority) -> PriorityTargets | None:
        return next((t for t in self.targets if t.priority == priority), None)


class BusinessCalendarChanged(Event):
    """A calendar was created, changed (``calendar`` set) or deleted (``calendar`` None).
    ``version`` grows with every change, so an older copy never overwrites a newer one."""

    name: ClassVar[str] = "business_calendar.changed"
    organization_id: uuid.UUID
    calendar_id: uuid.UUID
    version: int
    calendar: BusinessCalendarConfig | None = None


class SlaPolicyChanged(Event):
    """A policy was created, changed (``policy`` set) or deleted (``policy`` None)."""

    name: ClassVar[str] = "sla_policy.changed"
    schema_version: int = 2
    organization_id: uuid.UUID
    policy_id: uuid.UUID
    version: int
    policy: SlaPolicyConfig | None = None


class ClockState(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    FULFILLED = "fulfilled"
    STOPPED = "stopped"
    """The ticket was closed (or the target dropped from its policy) before it was met."""


class TicketSlaTarget(Contract):
    """One target of a ticket as the SLA service sees it at ``as_of``."""

    target: SlaTargetKind
    cycle: int = 0
    state: ClockState
    mode: TimeMode = TimeMode.BUSINESS
    due_at: AwareDatetime | None = None
    remaining_minutes: float | None = None
    """Business (or calendar, by ``mode``) minutes left at ``as_of``; negative once overdue."""
    warned: bool = False
    breached: bool = False


class SlaClockChanged(Event):
    """A ticket's current SLA targets. ``sequence`` grows per ticket: a consumer keeps the
    highest it has seen."""

    name: ClassVar[str] = "sla.clock_changed"
    ticket_id: uuid.UUID
    organization_id: uuid.UUID
    sequence: int
    policy_id: uuid.UUID | None = None
    targets: list[TicketSlaTarget] = []


SLA_EVENTS: tuple[type[Event], ...] = (BusinessCalendarChanged, SlaPolicyChanged, SlaClockChanged)
