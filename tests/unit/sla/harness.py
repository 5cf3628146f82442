"""A fake queue around the SLA handlers: the in-memory twin, a fake clock, and jobs that run
when the clock passes their ``run_at`` — as the queue would run them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from insightdesk.shared.clock import FakeClock
from insightdesk.shared.contracts import (
    BusinessCalendarChanged,
    BusinessCalendarConfig,
    Event,
    Role,
    SlaBreached,
    SlaClockChanged,
    SlaPolicyChanged,
    SlaPolicyConfig,
    SlaWarning,
    TicketClosed,
    TicketCreated,
    TicketMessageAdded,
    TicketPriority,
    TicketPriorityChanged,
    TicketSnapshot,
    TicketStatus,
    TicketStatusChanged,
    UserRef,
)
from insightdesk.sla import handlers
from insightdesk.sla.clocks import Check
from insightdesk.sla.memory import MemoryUnitFactory

ORG = uuid.UUID("00000000-0000-0000-0000-00000000000a")
CUSTOMER = UserRef(id=uuid.uuid4(), email="c@example.com", name="Cleo", role=Role.CUSTOMER)
AGENT = UserRef(id=uuid.uuid4(), email="a@example.com", name="Ada", role=Role.AGENT)


def policy(**fields: Any) -> SlaPolicyConfig:
    base: dict[str, Any] = {
        "name": "default",
        "is_default": True,
        "targets": [
            {
                "priority": p,
                "first_response": {"minutes": 60},
                "next_response": {"minutes": 120},
                "resolution": {"minutes": 480},
            }
            for p in ("low", "normal", "high", "urgent")
        ],
    }
    base.update(fields)
    return SlaPolicyConfig.model_validate(base)


class Harness:
    def __init__(self, start: datetime | None = None) -> None:
        self.clock = FakeClock(start or datetime(2026, 3, 16, 9, 0, tzinfo=UTC))
        self.units = MemoryUnitFactory()
        self.calendars = handlers.CalendarCache()
        self.versions: dict[uuid.UUID, int] = {}

    @property
    def state(self) -> Any:
        return self.units.state

    # ------------------------------------------------------------------ feeding events

    async def deliver(self, event: Event) -> object:
        async with self.units() as unit:
            if isinstance(event, SlaPolicyChanged):
                return await handlers.on_policy_changed(event, unit=unit, calendars=self.calendars)
            if isinstance(event, BusinessCalendarChanged):
                return await handlers.on_calendar_changed(
                    event, unit=unit, calendars=self.calendars
                )
            return await handlers.on_ticket_event(event, unit=unit, calendars=self.calendars)  # type: ignore[arg-type]

    async def set_policy(
        self, config: SlaPolicyConfig | None, policy_id: uuid.UUID | None = None
    ) -> uuid.UUID:
        pid = policy_id or uuid.uuid4()
        self.versions[pid] = self.versions.get(pid, 0) + 1
        await self.deliver(
            SlaPolicyChanged(
                occurred_at=self.clock.now(),
                organization_id=ORG,
                policy_id=pid,
                version=self.versions[pid],
                policy=config,
            )
        )
        return pid

    async def set_calendar(
        self, config: BusinessCalendarConfig, calendar_id: uuid.UUID | None = None
    ) -> uuid.UUID:
        cid = calendar_id or uuid.uuid4()
        self.versions[cid] = self.versions.get(cid, 0) + 1
        await self.deliver(
            BusinessCalendarChanged(
                occurred_at=self.clock.now(),
                organization_id=ORG,
                calendar_id=cid,
                version=self.versions[cid],
                calendar=config,
            )
        )
        return cid

    # ------------------------------------------------------------------ the fake queue

    async def advance(self, by: timedelta) -> None:
        """Move the clock, running every job due on the way at its own instant."""
        end = self.clock.now() + by
        while True:
            due = sorted(
                (c for c in self.state.jobs.values() if c.run_at <= end), key=lambda c: c.run_at
            )
            if not due:
                break
            check = due[0]
            self.clock.set(max(check.run_at, self.clock.now()))
            await self.run(check)
        self.clock.set(end)

    async def run(self, check: Check) -> handlers.CheckResult:
        self.state.jobs.pop(check.key, None)
        async with self.units() as unit:
            return await handlers.run_check(
                check, unit=unit, calendars=self.calendars, now=self.clock.now()
            )

    # ------------------------------------------------------------------ what came out

    def published(self, kind: type[Event]) -> list[Any]:
        return [e for e in self.state.published if isinstance(e, kind)]

    def breaches(self) -> list[SlaBreached]:
        return [e for e in self.published(SlaBreached) if e.escalation_level == 0]

    def warnings(self) -> list[SlaWarning]:
        return self.published(SlaWarning)

    def targets(self, ticket_id: uuid.UUID) -> dict[str, Any]:
        last = [e for e in self.published(SlaClockChanged) if e.ticket_id == ticket_id][-1]
        return {t.target.value: t for t in last.targets}


class TicketStory:
    """Ticket events as the tickets service would publish them."""

    def __init__(self, h: Harness, priority: TicketPriority = TicketPriority.NORMAL) -> None:
        self.h = h
        self.id = uuid.uuid4()
        self.created_at = h.clock.now()
        self.status = TicketStatus.OPEN
        self.priority = priority
        self.first_response_at: datetime | None = None
        self.resolved_at: datetime | None = None
        self.closed_at: datetime | None = None

    def snapshot(self) -> TicketSnapshot:
        return TicketSnapshot(
            id=self.id,
            organization_id=ORG,
            subject="Printer on fire",
            status=self.status,
            priority=self.priority,
            customer=CUSTOMER,
            created_at=self.created_at,
            first_response_at=self.first_response_at,
            resolved_at=self.resolved_at,
            closed_at=self.closed_at,
        )

    def created(self) -> TicketCreated:
        return TicketCreated(
            occurred_at=self.created_at, ticket=self.snapshot(), created_by=CUSTOMER
        )

    def reply(self, author: UserRef) -> TicketMessageAdded:
        now = self.h.clock.now()
        first = author.role != Role.CUSTOMER and self.first_response_at is None
        if first:
            self.first_response_at = now
        return TicketMessageAdded(
            occurred_at=now,
            ticket=self.snapshot(),
            message_id=uuid.uuid4(),
            author=author,
            body="hello",
            first_response=first,
        )

    def status_to(self, status: TicketStatus) -> TicketStatusChanged:
        now = self.h.clock.now()
        old, self.status = self.status, status
        if status == TicketStatus.RESOLVED:
            self.resolved_at = now
        if status == TicketStatus.CLOSED:
            self.closed_at = now
        return TicketStatusChanged(
            occurred_at=now,
            ticket=self.snapshot(),
            old_status=old,
            new_status=status,
            changed_by=AGENT,
        )

    def closed(self) -> TicketClosed:
        return TicketClosed(occurred_at=self.h.clock.now(), ticket=self.snapshot())

    def priority_to(self, priority: TicketPriority) -> TicketPriorityChanged:
        old, self.priority = self.priority, priority
        return TicketPriorityChanged(
            occurred_at=self.h.clock.now(),
            ticket=self.snapshot(),
            old_priority=old,
            new_priority=priority,
            changed_by=AGENT,
        )
