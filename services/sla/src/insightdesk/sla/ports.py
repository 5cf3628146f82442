"""The SLA service's two ports: its store (schema ``sla``) and its outbox (events and check
jobs), both inside one unit of work — one transaction.

:mod:`insightdesk.sla.store` implements them on PostgreSQL, :mod:`insightdesk.sla.memory` in
memory; the contract tests in ``tests/`` hold both to the same behaviour.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from insightdesk.shared.contracts import BusinessCalendarConfig, Event, SlaTargetKind
from insightdesk.sla.clocks import Check, Clock
from insightdesk.sla.tracking import PolicyRecord, TicketState

__all__ = ["CalendarRecord", "LogEntry", "SlaOutbox", "SlaStore", "Unit", "UnitFactory"]


@dataclass(frozen=True, slots=True)
class CalendarRecord:
    id: uuid.UUID
    organization_id: uuid.UUID
    version: int
    config: BusinessCalendarConfig | None
    """None once deleted."""


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One line of a ticket's append-only SLA log."""

    ticket_id: uuid.UUID
    at: datetime
    kind: str
    target: SlaTargetKind | None = None
    cycle: int | None = None
    detail: dict[str, Any] | None = None


class SlaStore(Protocol):
    async def claim_event(self, key: str) -> bool:
        """Remember an event as handled; False if it was already (a duplicate delivery)."""

    async def tickets(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, TicketState]:
        """The tickets known among ``ids``, locked until the unit ends."""

    async def ensure_ticket(self, ticket: TicketState) -> None:
        """Insert the ticket unless it is known (two first events of a ticket may race)."""

    async def save_tickets(self, tickets: Sequence[TicketState]) -> None: ...

    async def clocks(self, ticket_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Clock]]:
        """Every clock of the tickets (each list ordered by target and cycle)."""

    async def save_clocks(self, clocks: Sequence[Clock]) -> None:
        """Insert or update the clocks (by ticket, target and cycle)."""

    async def record_breach(self, clock: Clock, at: datetime) -> bool:
        """Record the breach of the clock's cycle; False if it was recorded already."""

    async def record_warning(self, clock: Clock, at: datetime) -> bool:
        """Record the warning of the clock's deadline version; False if recorded already."""

    async def record_escalation(self, check: Check, at: datetime) -> bool:
        """Record an escalation level of a deadline version; False if recorded already."""

    async def append_log(self, entries: Sequence[LogEntry]) -> None: ...

    async def log(self, ticket_id: uuid.UUID) -> list[LogEntry]:
        """A ticket's SLA log, oldest first."""

    async def policies(self, organization_id: uuid.UUID) -> list[PolicyRecord]:
        """The organization's policies, deleted ones included (``config`` None)."""

    async def put_policy(self, record: PolicyRecord) -> bool:
        """Store the policy unless a newer (or the same) version is stored already."""

    async def calendars(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, CalendarRecord]: ...

    async def put_calendar(self, record: CalendarRecord) -> bool:
        """Store the calendar unless a newer (or the same) version is stored already."""

    async def open_tickets(
        self,
        *,
        organization_id: uuid.UUID | None = None,
        calendar_id: uuid.UUID | None = None,
    ) -> list[uuid.UUID]:
        """The open (not closed) tickets of an organization; the tickets with an open clock on
        a calendar."""

    async def overdue(self, now: datetime, limit: int) -> list[Check]:
        """Deadline and warning checks of running clocks that are due by ``now`` and not yet
        done (no breach, no warning): what the safety-net scan settles."""


class SlaOutbox(Protocol):
    async def publish(self, event: Event) -> None:
        """Publish in the unit's transaction."""

    async def schedule(self, checks: Sequence[Check]) -> int:
        """One ``sla-check`` job per check at its ``run_at`` (duplicates by key are dropped);
        the number of jobs written."""


class Unit(Protocol):
    @property
    def store(self) -> SlaStore: ...

    @property
    def outbox(self) -> SlaOutbox: ...


UnitFactory = Callable[[], AbstractAsyncContextManager[Unit]]
"""Opens a unit of work: commits on a clean exit, rolls back on an error."""
