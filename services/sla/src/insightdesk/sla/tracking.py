"""What a ticket's clocks should be, given what the SLA service knows about the ticket.

The SLA service keeps its own copy of each ticket (:class:`TicketState`), merged from the
snapshots every ticket event carries: status and priority from the newest snapshot only, facts
that never un-happen (first response, resolution, closing) from any snapshot. :func:`reconcile`
then brings the clocks in line — starts, fulfils, pauses, resumes, stops and re-deadlines them —
and returns the jobs the new deadlines need.

Targets: ``first_response`` (created → first agent reply), ``resolution`` (created → resolved
or closed), ``next_response`` (a customer message after the first response → the next agent
reply; one clock per message awaiting a reply, counted in cycles) and ``periodic_update``
(an agent reply → the next agent reply, a new cycle each time).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from insightdesk.shared.contracts import (
    ClockState,
    SlaPolicyConfig,
    SlaTargetKind,
    TargetSpec,
    TicketPriority,
    TicketSnapshot,
    TicketStatus,
    TimeMode,
)
from insightdesk.sla.business_time import BusinessCalendar
from insightdesk.sla.clocks import Check, Clock

__all__ = [
    "CalendarLookup",
    "PolicyRecord",
    "Reconciled",
    "TicketState",
    "choose_policy",
    "on_message",
    "reconcile",
]

CalendarLookup = Callable[[TimeMode, uuid.UUID | None], BusinessCalendar]
"""The calendar a clock runs on: 24x7 for calendar time or no calendar."""


@dataclass(frozen=True, slots=True)
class PolicyRecord:
    id: uuid.UUID
    organization_id: uuid.UUID
    version: int
    config: SlaPolicyConfig | None
    """None once deleted (kept as a tombstone so an older change cannot resurrect it)."""


def choose_policy(
    policies: Sequence[PolicyRecord], priority: TicketPriority, customer_id: uuid.UUID
) -> PolicyRecord | None:
    """The first live non-default policy (by position) whose conditions match, else the
    default policy, else None."""
    live = [p for p in policies if p.config is not None]
    ordered = sorted(live, key=lambda p: (p.config.position if p.config else 0, str(p.id)))
    for record in ordered:
        assert record.config is not None
        if not record.config.is_default and record.config.conditions.matches(priority, customer_id):
            return record
    return next((p for p in ordered if p.config is not None and p.config.is_default), None)


@dataclass(slots=True)
class TicketState:
    id: uuid.UUID
    organization_id: uuid.UUID
    customer_id: uuid.UUID
    status: TicketStatus
    priority: TicketPriority
    created_at: datetime
    snapshot_at: datetime
    """When the status and priority held here were current."""
    first_response_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    last_staff_message_at: datetime | None = None
    policy_id: uuid.UUID | None = None
    sequence: int = 0
    """Of the last ``sla.clock_changed`` published for the ticket."""

    @classmethod
    def from_snapshot(cls, snap: TicketSnapshot, at: datetime) -> TicketState:
        state = cls(
            id=snap.id,
            organization_id=snap.organization_id,
            customer_id=snap.customer.id,
            status=snap.status,
            priority=snap.priority,
            created_at=snap.created_at,
            snapshot_at=at,
        )
        state.merge(snap, at)
        return state

    def merge(self, snap: TicketSnapshot, at: datetime) -> bool:
        """Take what is newer from ``snap`` (of an event at ``at``); True if anything changed."""
        before = (self.status, self.priority, self.first_response_at, self.resolved_at)
        before_closed = self.closed_at
        if at >= self.snapshot_at:
            self.status, self.priority, self.snapshot_at = snap.status, snap.priority, at
        self.first_response_at = _earliest(self.first_response_at, snap.first_response_at)
        self.resolved_at = _earliest(self.resolved_at, snap.resolved_at)
        self.closed_at = _earliest(self.closed_at, snap.closed_at)
        if snap.status == TicketStatus.CLOSED and self.closed_at is None:
            self.closed_at = at
        return before != (
            self.status,
            self.priority,
            self.first_response_at,
            self.resolved_at,
        ) or (before_closed != self.closed_at)


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


@dataclass(slots=True)
class Reconciled:
    checks: list[Check] = field(default_factory=list)
    changed: list[Clock] = field(default_factory=list)
    log: list[tuple[Clock, str, datetime]] = field(default_factory=list)
    """(clock, what happened, when) for the SLA event log."""

    def note(self, clock: Clock, what: str, at: datetime) -> None:
        if clock not in self.changed:
            self.changed.append(clock)
        self.log.append((clock, what, at))


def _open(clocks: list[Clock], target: SlaTargetKind) -> list[Clock]:
    return [c for c in clocks if c.target == target and c.is_open]


def _spec(
    policy: SlaPolicyConfig | None, ticket: TicketState, kind: SlaTargetKind
) -> TargetSpec | None:
    if policy is None:
        return None
    targets = policy.targets_for(ticket.priority)
    return targets.get(kind) if targets is not None else None


def _new_clock(
    ticket: TicketState,
    kind: SlaTargetKind,
    cycle: int,
    *,
    start: datetime,
    spec: TargetSpec,
    policy: PolicyRecord,
) -> Clock:
    assert policy.config is not None
    return Clock(
        ticket_id=ticket.id,
        organization_id=ticket.organization_id,
        target=kind,
        cycle=cycle,
        started_at=start,
        budget=timedelta(minutes=spec.minutes),
        mode=spec.mode,
        calendar_id=policy.config.calendar_id,
        policy_id=policy.id,
    )


def on_message(
    ticket: TicketState,
    clocks: list[Clock],
    *,
    staff: bool,
    at: datetime,
    policy: PolicyRecord | None,
    calendars: CalendarLookup,
) -> Reconciled:
    """A message at ``at``: a customer's starts a next-response clock (unless one is open or
    an agent already replied after it); an agent's fulfils the open next-response clocks and
    the periodic-update clock, and starts the next periodic-update cycle."""
    result = Reconciled()
    config = policy.config if policy is not None else None
    if ticket.closed_at is not None:
        return result
    if staff:
        ticket.last_staff_message_at = max(filter(None, (ticket.last_staff_message_at, at)))
        for kind in (SlaTargetKind.NEXT_RESPONSE, SlaTargetKind.PERIODIC_UPDATE):
            for clock in _open(clocks, kind):
                if clock.started_at <= at and clock.finish(
                    at, calendars(clock.mode, clock.calendar_id), ClockState.FULFILLED
                ):
                    result.note(clock, "fulfilled", at)
        spec = _spec(config, ticket, SlaTargetKind.PERIODIC_UPDATE)
        later = [
            c for c in clocks if c.target == SlaTargetKind.PERIODIC_UPDATE and c.started_at >= at
        ]
        if spec is not None and policy is not None and not later:
            _start(
                ticket,
                clocks,
                SlaTargetKind.PERIODIC_UPDATE,
                at=at,
                spec=spec,
                policy=policy,
                calendars=calendars,
                result=result,
            )
        return result
    if ticket.first_response_at is None or at <= ticket.first_response_at:
        return result  # the first-response clock covers it
    if ticket.last_staff_message_at is not None and ticket.last_staff_message_at > at:
        return result  # already answered (the reply was delivered first)
    if _open(clocks, SlaTargetKind.NEXT_RESPONSE):
        return result  # the oldest unanswered message sets the clock
    if any(c.target == SlaTargetKind.NEXT_RESPONSE and c.started_at >= at for c in clocks):
        return result  # a duplicate or older message than a clock already counted
    spec = _spec(config, ticket, SlaTargetKind.NEXT_RESPONSE)
    if spec is not None and policy is not None:
        _start(
            ticket,
            clocks,
            SlaTargetKind.NEXT_RESPONSE,
            at=at,
            spec=spec,
            policy=policy,
            calendars=calendars,
            result=result,
        )
    return result


def _start(
    ticket: TicketState,
    clocks: list[Clock],
    kind: SlaTargetKind,
    *,
    at: datetime,
    spec: TargetSpec,
    policy: PolicyRecord,
    calendars: CalendarLookup,
    result: Reconciled,
) -> Clock:
    assert policy.config is not None
    cycle = 1 + max((c.cycle for c in clocks if c.target == kind), default=-1)
    clock = _new_clock(ticket, kind, cycle, start=at, spec=spec, policy=policy)
    clocks.append(clock)
    if ticket.status in policy.config.pause_statuses:
        clock.pause(at, calendars(clock.mode, clock.calendar_id))
    result.note(clock, "started", at)
    result.checks += clock.reschedule(
        calendars(clock.mode, clock.calendar_id), policy.config.warning
    )
    return clock


def reconcile(
    ticket: TicketState,
    clocks: list[Clock],
    *,
    policy: PolicyRecord | None,
    calendars: CalendarLookup,
    at: datetime,
    old_calendars: CalendarLookup | None = None,
    recompute: bool = False,
) -> Reconciled:
    """Bring ``clocks`` (all of the ticket's, changed in place; new ones appended) in line with
    ``ticket`` and ``policy`` as of ``at``.

    ``old_calendars`` are the calendars the clocks ran on so far (when a calendar changed);
    ``recompute`` re-deadlines every open clock even if nothing else changed.
    """
    result = Reconciled()
    before = old_calendars or calendars
    config = policy.config if policy is not None else None
    if ticket.closed_at is not None:
        for clock in clocks:
            if clock.finish(
                max(ticket.closed_at, clock.started_at),
                before(clock.mode, clock.calendar_id),
                ClockState.STOPPED,
            ):
                result.note(clock, "stopped", ticket.closed_at)
        return result
    # the clocks every ticket has from its creation
    for kind in (SlaTargetKind.FIRST_RESPONSE, SlaTargetKind.RESOLUTION):
        spec = _spec(config, ticket, kind)
        if spec is not None and policy is not None and not any(c.target == kind for c in clocks):
            _start(
                ticket,
                clocks,
                kind,
                at=ticket.created_at,
                spec=spec,
                policy=policy,
                calendars=calendars,
                result=result,
            )
    # facts that fulfil them
    for kind, done in (
        (SlaTargetKind.FIRST_RESPONSE, ticket.first_response_at),
        (SlaTargetKind.RESOLUTION, ticket.resolved_at),
    ):
        if done is None:
            continue
        for clock in _open(clocks, kind):
            if clock.finish(done, before(clock.mode, clock.calendar_id), ClockState.FULFILLED):
                result.note(clock, "fulfilled", done)
    paused = config is not None and ticket.status in config.pause_statuses
    for clock in clocks:
        if not clock.is_open:
            continue
        old = before(clock.mode, clock.calendar_id)
        spec = _spec(config, ticket, clock.target)
        if spec is None or policy is None or config is None:
            if clock.finish(max(at, clock.started_at), old, ClockState.STOPPED):
                result.note(clock, "stopped: not a target of the policy any more", at)
            continue
        moved = False
        if paused and clock.pause(ticket.snapshot_at, old):
            result.note(clock, "paused", ticket.snapshot_at)
            moved = True
        elif not paused and clock.resume(ticket.snapshot_at):
            result.note(clock, "resumed", ticket.snapshot_at)
            moved = True
        rules = (timedelta(minutes=spec.minutes), spec.mode, config.calendar_id, policy.id)
        if rules != (clock.budget, clock.mode, clock.calendar_id, clock.policy_id):
            clock.advance(at, old)
            clock.budget, clock.mode, clock.calendar_id, clock.policy_id = rules
            result.note(clock, "rules changed", at)
            moved = True
        elif recompute:
            clock.advance(at, old)
            result.note(clock, "recomputed", at)
            moved = True
        if moved:
            result.checks += clock.reschedule(
                calendars(clock.mode, clock.calendar_id), config.warning
            )
    return result
