"""SLA clocks: one per ticket, target and cycle, measured in business (or calendar) time.

A clock keeps the business time it has *used* up to a checkpoint (``since``) and, while it
runs, counts on from there. Every change — a pause, a resume, a new budget from another policy
or priority, another calendar — first checkpoints the clock at the change's instant with the
calendar it ran on, then computes the new deadline with the new rules: the time already used
is kept. Each new deadline bumps ``version``; the queue jobs of older versions find themselves
stale and do nothing.

Checkpoints never move backwards (an event older than the checkpoint changes nothing about
the time used), so duplicate and out-of-order events cannot rewind a clock.

Pure code: instants are passed in, calendars are given, nothing here does I/O.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from insightdesk.shared.contracts import (
    ClockState,
    SlaTargetKind,
    TicketSlaTarget,
    TimeMode,
    WarningRule,
)
from insightdesk.sla.business_time import BusinessCalendar, NoBusinessTime

__all__ = ["Check", "CheckKind", "Clock", "Pause"]


class CheckKind(StrEnum):
    WARNING = "warning"
    DEADLINE = "deadline"
    ESCALATION = "escalation"


@dataclass(frozen=True, slots=True)
class Check:
    """A job to run at ``run_at`` for one version of one clock."""

    ticket_id: uuid.UUID
    target: SlaTargetKind
    cycle: int
    version: int
    kind: CheckKind
    run_at: datetime
    level: int = 0

    @property
    def key(self) -> str:
        """The job's singleton key: one job per (ticket, target, cycle, version, kind, level)."""
        suffix = f"{self.kind.value}{self.level if self.kind == CheckKind.ESCALATION else ''}"
        return f"{self.ticket_id}:{self.target.value}:{self.cycle}:{self.version}:{suffix}"


@dataclass(slots=True)
class Pause:
    paused_at: datetime
    resumed_at: datetime | None = None


@dataclass(slots=True)
class Clock:
    ticket_id: uuid.UUID
    organization_id: uuid.UUID
    target: SlaTargetKind
    cycle: int
    started_at: datetime
    budget: timedelta
    mode: TimeMode = TimeMode.BUSINESS
    calendar_id: uuid.UUID | None = None
    policy_id: uuid.UUID | None = None
    state: ClockState = ClockState.RUNNING
    used: timedelta = timedelta(0)
    since: datetime | None = None
    """Checkpoint: business time in ``used`` is counted up to here."""
    due_at: datetime | None = None
    warn_at: datetime | None = None
    version: int = 0
    finished_at: datetime | None = None
    warned: bool = False
    breached: bool = False
    pauses: list[Pause] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.since is None:
            self.since = self.started_at

    @property
    def is_open(self) -> bool:
        return self.state in (ClockState.RUNNING, ClockState.PAUSED)

    @property
    def checkpoint(self) -> datetime:
        assert self.since is not None
        return self.since

    # ------------------------------------------------------------------ measuring

    def used_at(self, at: datetime, calendar: BusinessCalendar) -> timedelta:
        """Business time used by ``at`` (the time at the checkpoint for earlier instants)."""
        if self.state != ClockState.RUNNING:
            return self.used
        return self.used + calendar.business_time(self.checkpoint, at)

    def remaining_at(self, at: datetime, calendar: BusinessCalendar) -> timedelta:
        return self.budget - self.used_at(at, calendar)

    def advance(self, at: datetime, calendar: BusinessCalendar) -> datetime:
        """Checkpoint at ``at`` (or leave the checkpoint where it is when ``at`` is older);
        returns the checkpoint."""
        if at > self.checkpoint:
            self.used = self.used_at(at, calendar)
            self.since = at
        return self.checkpoint

    # ------------------------------------------------------------------ changing

    def reschedule(
        self,
        calendar: BusinessCalendar,
        warning: WarningRule,
        *,
        already_due: datetime | None = None,
    ) -> list[Check]:
        """A new deadline version from the checkpoint; the jobs it needs.

        A clock with no business time left keeps the deadline it had (or gets ``already_due``
        when it never had one) and its deadline job runs at once.
        """
        self.version += 1
        if self.state != ClockState.RUNNING:
            self.due_at = self.warn_at = None
            return []
        start = self.checkpoint
        left = self.budget - self.used
        if left > timedelta(0):
            try:
                self.due_at = calendar.due_at(start, left)
            except NoBusinessTime:
                self.due_at = self.warn_at = None
                return []
        else:
            self.due_at = self.due_at or already_due or start
        checks = [self._check(CheckKind.DEADLINE, self.due_at)]
        self.warn_at = None
        if not self.warned and not self.breached:
            threshold = _warning_threshold(self.budget, warning)
            if self.used >= threshold:
                self.warn_at = start
            elif left > timedelta(0):
                self.warn_at = min(calendar.due_at(start, threshold - self.used), self.due_at)
            if self.warn_at is not None:
                checks.insert(0, self._check(CheckKind.WARNING, self.warn_at))
        return checks

    def pause(self, at: datetime, calendar: BusinessCalendar) -> bool:
        if self.state != ClockState.RUNNING:
            return False
        at = self.advance(at, calendar)
        self.state = ClockState.PAUSED
        self.pauses.append(Pause(at))
        return True

    def resume(self, at: datetime) -> bool:
        if self.state != ClockState.PAUSED:
            return False
        at = max(at, self.checkpoint)
        self.state = ClockState.RUNNING
        self.since = at
        if self.pauses and self.pauses[-1].resumed_at is None:
            self.pauses[-1].resumed_at = at
        return True

    def finish(self, at: datetime, calendar: BusinessCalendar, state: ClockState) -> bool:
        """Fulfil or stop the clock at ``at`` (kept even when older than the checkpoint: a
        reply is fulfilled when it was written)."""
        if not self.is_open:
            return False
        self.advance(at, calendar)
        if self.pauses and self.pauses[-1].resumed_at is None:
            self.pauses[-1].resumed_at = max(at, self.pauses[-1].paused_at)
        self.state = state
        self.finished_at = at
        self.version += 1
        self.warn_at = None
        return True

    def late(self) -> bool:
        """Fulfilled after its deadline (a breach the deadline job may not have recorded)."""
        return (
            self.state == ClockState.FULFILLED
            and self.due_at is not None
            and self.finished_at is not None
            and self.finished_at > self.due_at
        )

    def _check(self, kind: CheckKind, at: datetime, level: int = 0) -> Check:
        return Check(self.ticket_id, self.target, self.cycle, self.version, kind, at, level)

    def escalation(self, level: int, at: datetime) -> Check:
        return self._check(CheckKind.ESCALATION, at, level)

    def view(self, at: datetime, calendar: BusinessCalendar) -> TicketSlaTarget:
        remaining = None
        if self.is_open:
            remaining = round(self.remaining_at(at, calendar) / timedelta(minutes=1), 2)
        return TicketSlaTarget(
            target=self.target,
            cycle=self.cycle,
            state=self.state,
            mode=self.mode,
            due_at=self.due_at,
            remaining_minutes=remaining,
            warned=self.warned,
            breached=self.breached,
        )


def _warning_threshold(budget: timedelta, rule: WarningRule) -> timedelta:
    """The business time used at which to warn."""
    if rule.minutes_before is not None:
        return max(budget - timedelta(minutes=rule.minutes_before), timedelta(0))
    return budget * (rule.percent_elapsed or 80) / 100
