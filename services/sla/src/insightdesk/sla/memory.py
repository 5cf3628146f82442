"""The in-memory twin of the SLA store and outbox, held to the same contract tests as the
PostgreSQL ones: fast unit tests of the handlers without a database.

A :class:`MemoryUnitFactory` unit works on copies and publishes them on a clean exit, so a
failing handler leaves nothing behind, as a rolled-back transaction would.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime

from insightdesk.shared.contracts import ClockState, Event
from insightdesk.sla.clocks import Check, CheckKind, Clock
from insightdesk.sla.ports import CalendarRecord, LogEntry
from insightdesk.sla.tracking import PolicyRecord, TicketState

__all__ = ["MemoryOutbox", "MemoryState", "MemoryStore", "MemoryUnit", "MemoryUnitFactory"]


@dataclass
class MemoryState:
    events: set[str] = field(default_factory=set)
    tickets: dict[uuid.UUID, TicketState] = field(default_factory=dict)
    clocks: dict[tuple[uuid.UUID, str, int], Clock] = field(default_factory=dict)
    breaches: dict[tuple[uuid.UUID, str, int], datetime] = field(default_factory=dict)
    warnings: dict[tuple[uuid.UUID, str, int, int], datetime] = field(default_factory=dict)
    escalations: dict[tuple[uuid.UUID, str, int, int, int], datetime] = field(default_factory=dict)
    entries: list[LogEntry] = field(default_factory=list)
    policies: dict[uuid.UUID, PolicyRecord] = field(default_factory=dict)
    calendars: dict[uuid.UUID, CalendarRecord] = field(default_factory=dict)
    published: list[Event] = field(default_factory=list)
    jobs: dict[str, Check] = field(default_factory=dict)


class MemoryStore:
    def __init__(self, state: MemoryState) -> None:
        self.state = state

    async def claim_event(self, key: str) -> bool:
        if key in self.state.events:
            return False
        self.state.events.add(key)
        return True

    async def tickets(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, TicketState]:
        return {i: self.state.tickets[i] for i in ids if i in self.state.tickets}

    async def ensure_ticket(self, ticket: TicketState) -> None:
        self.state.tickets.setdefault(ticket.id, ticket)

    async def save_tickets(self, tickets: Sequence[TicketState]) -> None:
        for ticket in tickets:
            self.state.tickets[ticket.id] = ticket

    async def clocks(self, ticket_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Clock]]:
        wanted = set(ticket_ids)
        found: dict[uuid.UUID, list[Clock]] = {}
        for key in sorted(self.state.clocks, key=lambda k: (str(k[0]), k[1], k[2])):
            if key[0] in wanted:
                found.setdefault(key[0], []).append(self.state.clocks[key])
        return found

    async def save_clocks(self, clocks: Sequence[Clock]) -> None:
        for clock in clocks:
            self.state.clocks[(clock.ticket_id, clock.target.value, clock.cycle)] = clock

    async def record_breach(self, clock: Clock, at: datetime) -> bool:
        key = (clock.ticket_id, clock.target.value, clock.cycle)
        if key in self.state.breaches:
            return False
        self.state.breaches[key] = at
        return True

    async def record_warning(self, clock: Clock, at: datetime) -> bool:
        key = (clock.ticket_id, clock.target.value, clock.cycle, clock.version)
        if key in self.state.warnings:
            return False
        self.state.warnings[key] = at
        return True

    async def record_escalation(self, check: Check, at: datetime) -> bool:
        key = (check.ticket_id, check.target.value, check.cycle, check.version, check.level)
        if key in self.state.escalations:
            return False
        self.state.escalations[key] = at
        return True

    async def append_log(self, entries: Sequence[LogEntry]) -> None:
        self.state.entries.extend(entries)

    async def log(self, ticket_id: uuid.UUID) -> list[LogEntry]:
        return [e for e in self.state.entries if e.ticket_id == ticket_id]

    async def policies(self, organization_id: uuid.UUID) -> list[PolicyRecord]:
        return [p for p in self.state.policies.values() if p.organization_id == organization_id]

    async def put_policy(self, record: PolicyRecord) -> bool:
        old = self.state.policies.get(record.id)
        if old is not None and old.version >= record.version:
            return False
        self.state.policies[record.id] = record
        return True

    async def calendars(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, CalendarRecord]:
        return {i: self.state.calendars[i] for i in ids if i in self.state.calendars}

    async def put_calendar(self, record: CalendarRecord) -> bool:
        old = self.state.calendars.get(record.id)
        if old is not None and old.version >= record.version:
            return False
        self.state.calendars[record.id] = record
        return True

    async def open_tickets(
        self,
        *,
        organization_id: uuid.UUID | None = None,
        calendar_id: uuid.UUID | None = None,
    ) -> list[uuid.UUID]:
        found = {
            t.id
            for t in self.state.tickets.values()
            if organization_id is not None
            and t.organization_id == organization_id
            and t.closed_at is None
        } | {
            c.ticket_id
            for c in self.state.clocks.values()
            if calendar_id is not None and c.is_open and c.calendar_id == calendar_id
        }
        return sorted(found, key=str)

    async def overdue(self, now: datetime, limit: int) -> list[Check]:
        checks = []
        for c in self.state.clocks.values():
            if c.state != ClockState.RUNNING or c.breached:
                continue
            if c.due_at is not None and c.due_at <= now:
                checks.append(
                    Check(c.ticket_id, c.target, c.cycle, c.version, CheckKind.DEADLINE, c.due_at)
                )
            elif not c.warned and c.warn_at is not None and c.warn_at <= now:
                checks.append(
                    Check(c.ticket_id, c.target, c.cycle, c.version, CheckKind.WARNING, c.warn_at)
                )
        checks.sort(key=lambda c: c.run_at)
        return checks[:limit]


class MemoryOutbox:
    def __init__(self, state: MemoryState) -> None:
        self.state = state

    async def publish(self, event: Event) -> None:
        self.state.published.append(event)

    async def schedule(self, checks: Sequence[Check]) -> int:
        written = 0
        for check in checks:
            if check.key not in self.state.jobs:
                self.state.jobs[check.key] = check
                written += 1
        return written


@dataclass
class MemoryUnit:
    store: MemoryStore
    outbox: MemoryOutbox


class MemoryUnitFactory:
    """``async with units() as unit``: a transaction over a copy of :attr:`state`."""

    def __init__(self, state: MemoryState | None = None) -> None:
        self.state = state or MemoryState()

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[MemoryUnit]:
        working = copy.deepcopy(self.state)
        yield MemoryUnit(MemoryStore(working), MemoryOutbox(working))
        self.state.__dict__.update(working.__dict__)
