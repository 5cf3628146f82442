"""The SLA service's use cases: plain async functions over a unit of work (store + outbox in
one transaction). Nothing here knows the queue transport.

* ticket events → the ticket's copy, then :func:`~insightdesk.sla.tracking.reconcile`;
* ``sla_policy.changed`` / ``business_calendar.changed`` → the service's copy, then every open
  clock they touch is re-deadlined, keeping the business time already used;
* a check job (deadline, warning, escalation of one clock version) → breach, warning or
  escalation, each recorded once by a unique key, or nothing when the version is stale;
* the scan → every overdue check that no job settled.

Every event is handled once (its key is claimed in the same transaction) and every change ends
with ``sla.clock_changed`` carrying the ticket's current targets.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from insightdesk.shared.contracts import (
    BusinessCalendarChanged,
    ClockState,
    Event,
    Recipient,
    Role,
    SlaBreached,
    SlaClockChanged,
    SlaPolicyChanged,
    SlaTargetKind,
    SlaWarning,
    TicketAssigned,
    TicketClosed,
    TicketCreated,
    TicketMessageAdded,
    TicketPriorityChanged,
    TicketStatusChanged,
    TimeMode,
)
from insightdesk.sla.business_time import BusinessCalendar, always_open
from insightdesk.sla.calendars import build_calendar
from insightdesk.sla.clocks import Check, CheckKind, Clock
from insightdesk.sla.ports import CalendarRecord, LogEntry, Unit, UnitFactory
from insightdesk.sla.tracking import (
    PolicyRecord,
    Reconciled,
    TicketState,
    choose_policy,
    on_message,
    reconcile,
)

log = logging.getLogger(__name__)

TicketEvent = (
    TicketCreated
    | TicketMessageAdded
    | TicketStatusChanged
    | TicketAssigned
    | TicketPriorityChanged
    | TicketClosed
)

__all__ = [
    "CalendarCache",
    "CheckResult",
    "on_calendar_changed",
    "on_policy_changed",
    "on_ticket_event",
    "run_check",
    "scan",
]


def event_key(event: Event) -> str:
    """A duplicate delivery of the same event has the same key."""
    digest = hashlib.sha256(event.model_dump_json().encode()).hexdigest()
    return f"{event.name}:{digest}"


class CalendarCache:
    """Built calendars by (id, version): building one (holidays) costs more than using it."""

    def __init__(self) -> None:
        self._built: dict[tuple[uuid.UUID, int], BusinessCalendar] = {}
        self._plain = always_open()

    def build(self, record: CalendarRecord) -> BusinessCalendar:
        if record.config is None:
            return self._plain
        key = (record.id, record.version)
        calendar = self._built.get(key)
        if calendar is None:
            if len(self._built) > 1000:
                self._built.clear()
            calendar = self._built[key] = build_calendar(record.config)
        return calendar

    async def lookup(
        self, unit: Unit, ids: Iterable[uuid.UUID | None], *, override: CalendarRecord | None = None
    ) -> _Lookup:
        wanted = sorted({i for i in ids if i is not None}, key=str)
        records = await unit.store.calendars(wanted) if wanted else {}
        if override is not None:
            records[override.id] = override
        return _Lookup({cid: self.build(r) for cid, r in records.items()}, self._plain)


@dataclass(frozen=True, slots=True)
class _Lookup:
    calendars: dict[uuid.UUID, BusinessCalendar]
    plain: BusinessCalendar

    def __call__(self, mode: TimeMode, calendar_id: uuid.UUID | None) -> BusinessCalendar:
        if mode == TimeMode.CALENDAR or calendar_id is None:
            return self.plain
        return self.calendars.get(calendar_id, self.plain)


# ---------------------------------------------------------------------- ticket events


async def on_ticket_event(event: TicketEvent, *, unit: Unit, calendars: CalendarCache) -> bool:
    """Apply one ticket event; False when it was a duplicate."""
    if not await unit.store.claim_event(event_key(event)):
        return False
    snap, at = event.ticket, event.occurred_at
    found = await unit.store.tickets([snap.id])
    if snap.id not in found:
        await unit.store.ensure_ticket(TicketState.from_snapshot(snap, at))
        found = await unit.store.tickets([snap.id])
    ticket = found[snap.id]
    ticket.merge(snap, at)
    clocks = (await unit.store.clocks([ticket.id])).get(ticket.id, [])
    policies = await unit.store.policies(ticket.organization_id)
    policy = choose_policy(policies, ticket.priority, ticket.customer_id)
    lookup = await calendars.lookup(
        unit,
        [c.calendar_id for c in clocks]
        + [policy.config.calendar_id if policy and policy.config else None],
    )
    result = reconcile(ticket, clocks, policy=policy, calendars=lookup, at=at)
    if isinstance(event, TicketMessageAdded):
        staff = event.author.role in (Role.AGENT, Role.ADMIN)
        message = on_message(ticket, clocks, staff=staff, at=at, policy=policy, calendars=lookup)
        _merge(result, message)
    ticket.policy_id = policy.id if policy is not None else None
    await _settle(unit, ticket, clocks, result, lookup=lookup, at=at, kind=event.name)
    return True


def _merge(into: Reconciled, other: Reconciled) -> None:
    into.checks += other.checks
    for clock in other.changed:
        if clock not in into.changed:
            into.changed.append(clock)
    into.log += other.log


async def _settle(
    unit: Unit,
    ticket: TicketState,
    clocks: list[Clock],
    result: Reconciled,
    *,
    lookup: _Lookup,
    at: datetime,
    kind: str,
    always_publish: bool = True,
) -> None:
    """Write the ticket, its changed clocks, late breaches, jobs and log; publish the ticket's
    targets."""
    entries = [LogEntry(ticket.id, at, f"event {kind}")]
    entries += [
        LogEntry(c.ticket_id, when, what, c.target, c.cycle, _detail(c))
        for c, what, when in result.log
    ]
    for clock in result.changed:
        if clock.late() and not clock.breached:
            clock.breached = True
            if await unit.store.record_breach(clock, clock.finished_at or at):
                entries.append(
                    LogEntry(
                        ticket.id,
                        at,
                        "breached (fulfilled late)",
                        clock.target,
                        clock.cycle,
                        _detail(clock),
                    )
                )
                await unit.outbox.publish(_breached(clock, ticket, at, level=0, notify=None))
    if result.changed or always_publish:
        await _publish_targets(unit, ticket, clocks, lookup, at)
    await unit.store.save_tickets([ticket])
    await unit.store.save_clocks(result.changed)
    await unit.outbox.schedule(result.checks)
    await unit.store.append_log(entries)


def _detail(clock: Clock) -> dict[str, object]:
    return {
        "state": clock.state.value,
        "version": clock.version,
        "due_at": clock.due_at.isoformat() if clock.due_at else None,
        "used_minutes": round(clock.used / timedelta(minutes=1), 3),
        "budget_minutes": round(clock.budget / timedelta(minutes=1), 3),
    }


async def _publish_targets(
    unit: Unit, ticket: TicketState, clocks: Sequence[Clock], lookup: _Lookup, at: datetime
) -> None:
    """Publish the ticket's current targets (the caller saves the ticket's new sequence)."""
    ticket.sequence += 1
    latest: dict[SlaTargetKind, Clock] = {}
    for clock in clocks:
        if clock.target not in latest or clock.cycle > latest[clock.target].cycle:
            latest[clock.target] = clock
    targets = [
        c.view(at, lookup(c.mode, c.calendar_id))
        for c in sorted(latest.values(), key=lambda c: list(SlaTargetKind).index(c.target))
    ]
    await unit.outbox.publish(
        SlaClockChanged(
            occurred_at=at,
            ticket_id=ticket.id,
            organization_id=ticket.organization_id,
            sequence=ticket.sequence,
            policy_id=ticket.policy_id,
            targets=targets,
        )
    )


def _breached(
    clock: Clock,
    ticket: TicketState,
    at: datetime,
    *,
    level: int,
    notify: Sequence[Recipient] | None,
    version: int | None = None,
) -> SlaBreached:
    assert clock.due_at is not None
    recipients = notify if notify is not None else (Recipient.ASSIGNEE, Recipient.ADMINS)
    return SlaBreached(
        occurred_at=at,
        ticket_id=ticket.id,
        organization_id=ticket.organization_id,
        target=clock.target.value,
        due_at=clock.due_at,
        cycle=clock.cycle,
        deadline_version=clock.version if version is None else version,
        escalation_level=level,
        notify=[r.value for r in recipients],
    )


# ---------------------------------------------------------------------- configuration


async def on_policy_changed(
    event: SlaPolicyChanged, *, unit: Unit, calendars: CalendarCache
) -> int:
    """Store the policy copy and re-deadline the organization's open tickets; the number of
    tickets recomputed (0 for a stale or duplicate change)."""
    record = PolicyRecord(event.policy_id, event.organization_id, event.version, event.policy)
    if not await unit.store.put_policy(record):
        return 0
    ids = await unit.store.open_tickets(organization_id=event.organization_id)
    return await _recompute(unit, ids, calendars, event.occurred_at, kind=event.name)


async def on_calendar_changed(
    event: BusinessCalendarChanged, *, unit: Unit, calendars: CalendarCache
) -> int:
    """Store the calendar copy and re-deadline the clocks running on it: the time they used so
    far is measured on the old calendar, what is left on the new one."""
    record = CalendarRecord(event.calendar_id, event.organization_id, event.version, event.calendar)
    before = (await unit.store.calendars([event.calendar_id])).get(event.calendar_id)
    if before is not None and before.version >= record.version:
        return 0
    ids = await unit.store.open_tickets(calendar_id=event.calendar_id)
    old = before or CalendarRecord(record.id, record.organization_id, 0, None)
    if not await unit.store.put_calendar(record):
        return 0
    return await _recompute(
        unit, ids, calendars, event.occurred_at, kind=event.name, old_calendar=old
    )


async def _recompute(
    unit: Unit,
    ids: Sequence[uuid.UUID],
    calendars: CalendarCache,
    at: datetime,
    *,
    kind: str,
    old_calendar: CalendarRecord | None = None,
) -> int:
    if not ids:
        return 0
    tickets = await unit.store.tickets(ids)
    all_clocks = await unit.store.clocks(list(tickets))
    policies_by_org: dict[uuid.UUID, list[PolicyRecord]] = {}
    checks: list[Check] = []
    changed: list[Clock] = []
    entries: list[LogEntry] = []
    calendar_ids = {c.calendar_id for cs in all_clocks.values() for c in cs}
    for org in {t.organization_id for t in tickets.values()}:
        policies_by_org[org] = await unit.store.policies(org)
        calendar_ids |= {p.config.calendar_id for p in policies_by_org[org] if p.config}
    lookup = await calendars.lookup(unit, calendar_ids)
    before = (
        await calendars.lookup(unit, calendar_ids, override=old_calendar)
        if old_calendar is not None
        else None
    )
    touched: list[tuple[TicketState, list[Clock]]] = []
    for ticket in tickets.values():
        clocks = all_clocks.get(ticket.id, [])
        policy = choose_policy(
            policies_by_org[ticket.organization_id], ticket.priority, ticket.customer_id
        )
        ticket.policy_id = policy.id if policy is not None else None
        result = reconcile(
            ticket,
            clocks,
            policy=policy,
            calendars=lookup,
            at=at,
            old_calendars=before,
            recompute=old_calendar is not None,
        )
        if not result.changed:
            continue
        checks += result.checks
        changed += result.changed
        entries += [
            LogEntry(c.ticket_id, when, f"{what} ({kind})", c.target, c.cycle, _detail(c))
            for c, what, when in result.log
        ]
        touched.append((ticket, clocks))
    await unit.store.save_clocks(changed)
    await unit.outbox.schedule(checks)
    await unit.store.append_log(entries)
    for ticket, clocks in touched:
        await _publish_targets(unit, ticket, clocks, lookup, at)
    await unit.store.save_tickets([ticket for ticket, _ in touched])
    return len(touched)


# ---------------------------------------------------------------------- check jobs


@dataclass(frozen=True, slots=True)
class CheckResult:
    """What a check did: ``done`` (breach/warning/escalation recorded now), ``stale`` (its
    version or state has moved on, or it was done already) or ``not_yet`` (run again in
    ``retry_in``)."""

    outcome: str
    retry_in: timedelta | None = None


async def run_check(
    check: Check, *, unit: Unit, calendars: CalendarCache, now: datetime
) -> CheckResult:
    tickets = await unit.store.tickets([check.ticket_id])
    ticket = tickets.get(check.ticket_id)
    if ticket is None:
        return CheckResult("stale")
    clocks = (await unit.store.clocks([ticket.id]))[ticket.id]
    clock = next((c for c in clocks if c.target == check.target and c.cycle == check.cycle), None)
    if clock is None:
        return CheckResult("stale")
    lookup = await calendars.lookup(unit, [clock.calendar_id])
    if check.kind == CheckKind.ESCALATION:
        return await _escalate(check, ticket, clock, clocks, unit=unit, lookup=lookup, now=now)
    if clock.version != check.version or clock.state != ClockState.RUNNING:
        return CheckResult("stale")
    due = clock.warn_at if check.kind == CheckKind.WARNING else clock.due_at
    if due is None:
        return CheckResult("stale")
    if now < due:
        return CheckResult("not_yet", due - now)
    entries = []
    if check.kind == CheckKind.WARNING:
        if clock.warned or clock.breached:
            return CheckResult("stale")
        clock.warned = True
        if not await unit.store.record_warning(clock, now):
            return CheckResult("stale")
        remaining = clock.remaining_at(now, lookup(clock.mode, clock.calendar_id))
        await unit.outbox.publish(
            SlaWarning(
                occurred_at=now,
                ticket_id=ticket.id,
                organization_id=ticket.organization_id,
                target=clock.target.value,
                due_at=clock.due_at or due,
                cycle=clock.cycle,
                deadline_version=clock.version,
                remaining_minutes=round(remaining / timedelta(minutes=1), 2),
            )
        )
        entries.append(
            LogEntry(ticket.id, now, "warned", clock.target, clock.cycle, _detail(clock))
        )
    else:
        if clock.breached:
            return CheckResult("stale")
        clock.breached = True
        if not await unit.store.record_breach(clock, now):
            await unit.store.save_clocks([clock])
            return CheckResult("stale")
        await unit.outbox.publish(_breached(clock, ticket, now, level=0, notify=None))
        entries.append(
            LogEntry(ticket.id, now, "breached", clock.target, clock.cycle, _detail(clock))
        )
        policy = next(
            (
                p
                for p in await unit.store.policies(ticket.organization_id)
                if p.id == clock.policy_id
            ),
            None,
        )
        if policy is not None and policy.config is not None:
            await unit.outbox.schedule(
                [
                    clock.escalation(n, due + timedelta(minutes=level.after_minutes))
                    for n, level in enumerate(policy.config.escalation, start=1)
                ]
            )
    await unit.store.save_clocks([clock])
    await unit.store.append_log(entries)
    await _publish_targets(unit, ticket, clocks, lookup, now)
    await unit.store.save_tickets([ticket])
    return CheckResult("done")


async def _escalate(
    check: Check,
    ticket: TicketState,
    clock: Clock,
    clocks: list[Clock],
    *,
    unit: Unit,
    lookup: _Lookup,
    now: datetime,
) -> CheckResult:
    if not clock.breached or not clock.is_open:
        return CheckResult("stale")
    if now < check.run_at:
        return CheckResult("not_yet", check.run_at - now)
    policy = next(
        (p for p in await unit.store.policies(ticket.organization_id) if p.id == clock.policy_id),
        None,
    )
    if policy is None or policy.config is None or check.level > len(policy.config.escalation):
        return CheckResult("stale")
    if not await unit.store.record_escalation(check, now):
        return CheckResult("stale")
    level = policy.config.escalation[check.level - 1]
    await unit.outbox.publish(
        _breached(clock, ticket, now, level=check.level, notify=level.notify, version=check.version)
    )
    await unit.store.append_log(
        [LogEntry(ticket.id, now, f"escalated to level {check.level}", clock.target, clock.cycle)]
    )
    return CheckResult("done")


async def scan(
    *, units: UnitFactory, calendars: CalendarCache, now: datetime, limit: int = 500
) -> int:
    """The safety net: settle every overdue check no job settled (each in its own
    transaction); the number settled now."""
    async with units() as unit:
        overdue = await unit.store.overdue(now, limit)
    done = 0
    for check in overdue:
        async with units() as unit:
            result = await run_check(check, unit=unit, calendars=calendars, now=now)
        done += result.outcome == "done"
    if done:
        log.info("sla-scan settled %d overdue checks", done)
    return done
