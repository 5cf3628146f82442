"""The SLA store's contract, held by the PostgreSQL store and its in-memory twin alike."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from insightdesk.shared.contracts import (
    BusinessCalendarConfig,
    ClockState,
    SlaTargetKind,
    TicketPriority,
    TicketStatus,
)
from insightdesk.sla.clocks import Check, CheckKind, Clock, Pause
from insightdesk.sla.memory import MemoryUnitFactory
from insightdesk.sla.ports import CalendarRecord, LogEntry, UnitFactory
from insightdesk.sla.store import PgUnitFactory
from insightdesk.sla.tracking import PolicyRecord, TicketState
from tests.unit.sla.harness import policy

T0 = datetime(2026, 3, 16, 9, 0, tzinfo=UTC)
ORG = uuid.uuid4()


@pytest.fixture(params=["memory", "postgres"])
def units(request: pytest.FixtureRequest) -> UnitFactory:
    if request.param == "memory":
        return MemoryUnitFactory()
    factory: PgUnitFactory = request.getfixturevalue("pg_units")
    return factory


def ticket(**fields: Any) -> TicketState:
    base: dict[str, Any] = {
        "id": uuid.uuid4(),
        "organization_id": ORG,
        "customer_id": uuid.uuid4(),
        "status": TicketStatus.OPEN,
        "priority": TicketPriority.NORMAL,
        "created_at": T0,
        "snapshot_at": T0,
    }
    base.update(fields)
    return TicketState(**base)


def clock(t: TicketState, **fields: Any) -> Clock:
    base: dict[str, Any] = {
        "ticket_id": t.id,
        "organization_id": t.organization_id,
        "target": SlaTargetKind.FIRST_RESPONSE,
        "cycle": 0,
        "started_at": T0,
        "budget": timedelta(minutes=60),
        "due_at": T0 + timedelta(minutes=60),
        "warn_at": T0 + timedelta(minutes=48),
        "version": 1,
    }
    base.update(fields)
    return Clock(**base)


async def test_an_event_is_claimed_once(units: UnitFactory) -> None:
    async with units() as unit:
        assert await unit.store.claim_event("ticket.created:abc")
        assert not await unit.store.claim_event("ticket.created:abc")
    async with units() as unit:
        assert not await unit.store.claim_event("ticket.created:abc")


async def test_a_failed_unit_leaves_nothing(units: UnitFactory) -> None:
    async def fail() -> None:
        async with units() as unit:
            await unit.store.claim_event("k")
            await unit.store.ensure_ticket(ticket())
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await fail()
    async with units() as unit:
        assert await unit.store.claim_event("k")


async def test_tickets_and_clocks_round_trip(units: UnitFactory) -> None:
    t = ticket(first_response_at=T0 + timedelta(minutes=5), sequence=3)
    c = clock(
        t,
        state=ClockState.PAUSED,
        used=timedelta(minutes=7, seconds=30),
        since=T0 + timedelta(minutes=9),
        pauses=[Pause(T0 + timedelta(minutes=9))],
        warned=True,
    )
    done = clock(t, target=SlaTargetKind.RESOLUTION, state=ClockState.FULFILLED, finished_at=T0)
    async with units() as unit:
        await unit.store.ensure_ticket(t)
        await unit.store.save_clocks([c, done])
    async with units() as unit:
        found = await unit.store.tickets([t.id, uuid.uuid4()])
        clocks = (await unit.store.clocks([t.id]))[t.id]
    assert found == {t.id: t}
    assert sorted(clocks, key=lambda x: x.target.value) == [c, done]
    t.status, t.sequence = TicketStatus.PENDING, 4
    c.state, c.pauses[0].resumed_at = ClockState.RUNNING, T0 + timedelta(minutes=20)
    async with units() as unit:
        await unit.store.ensure_ticket(ticket(id=t.id, status=TicketStatus.CLOSED))  # known: no-op
        await unit.store.save_tickets([t])
        await unit.store.save_clocks([c])
    async with units() as unit:
        assert (await unit.store.tickets([t.id]))[t.id] == t
        assert next(x for x in (await unit.store.clocks([t.id]))[t.id] if x.target == c.target) == c


async def test_breach_warning_and_escalation_are_recorded_once(units: UnitFactory) -> None:
    t = ticket()
    c = clock(t)
    check = Check(t.id, c.target, 0, 1, CheckKind.ESCALATION, T0, level=1)
    async with units() as unit:
        await unit.store.ensure_ticket(t)
        await unit.store.save_clocks([c])
        assert await unit.store.record_breach(c, T0)
        assert not await unit.store.record_breach(c, T0 + timedelta(seconds=1))
        assert await unit.store.record_warning(c, T0)
        assert not await unit.store.record_warning(c, T0)
        c.version = 2
        assert await unit.store.record_warning(c, T0)  # a new deadline version warns again
        assert await unit.store.record_escalation(check, T0)
        assert not await unit.store.record_escalation(check, T0)


async def test_configuration_copies_keep_the_newest_version(units: UnitFactory) -> None:
    pid, cid = uuid.uuid4(), uuid.uuid4()
    async with units() as unit:
        assert await unit.store.put_policy(PolicyRecord(pid, ORG, 2, policy(name="v2")))
        assert not await unit.store.put_policy(PolicyRecord(pid, ORG, 1, policy(name="v1")))
        assert await unit.store.put_policy(PolicyRecord(pid, ORG, 3, None))
        cal = BusinessCalendarConfig(name="c", time_zone="Europe/Berlin")
        assert await unit.store.put_calendar(CalendarRecord(cid, ORG, 1, cal))
        assert not await unit.store.put_calendar(CalendarRecord(cid, ORG, 1, None))
    async with units() as unit:
        assert await unit.store.policies(ORG) == [PolicyRecord(pid, ORG, 3, None)]
        assert await unit.store.calendars([cid]) == {cid: CalendarRecord(cid, ORG, 1, cal)}


async def test_open_tickets_and_overdue_checks(units: UnitFactory) -> None:
    cal = uuid.uuid4()
    a, b, c = ticket(), ticket(), ticket(organization_id=uuid.uuid4())
    closed = ticket(closed_at=T0)
    async with units() as unit:
        await unit.store.ensure_ticket(closed)
        for t in (a, b, c):
            await unit.store.ensure_ticket(t)
        await unit.store.save_clocks(
            [
                clock(a, calendar_id=cal),  # due at +60, warn at +48
                clock(b, state=ClockState.FULFILLED),
                clock(c, calendar_id=cal, breached=True),
            ]
        )
    async with units() as unit:
        assert sorted(await unit.store.open_tickets(organization_id=ORG), key=str) == sorted(
            [a.id, b.id], key=str
        )
        assert sorted(await unit.store.open_tickets(calendar_id=cal), key=str) == sorted(
            [a.id, c.id], key=str
        )
        assert await unit.store.overdue(T0 + timedelta(minutes=30), 10) == []
        warn = await unit.store.overdue(T0 + timedelta(minutes=50), 10)
        assert [(x.ticket_id, x.kind) for x in warn] == [(a.id, CheckKind.WARNING)]
        due = await unit.store.overdue(T0 + timedelta(minutes=61), 10)
        assert [(x.ticket_id, x.kind, x.version) for x in due] == [(a.id, CheckKind.DEADLINE, 1)]


async def test_the_log_keeps_entries_in_order(units: UnitFactory) -> None:
    t = ticket()
    entries = [
        LogEntry(t.id, T0, "event ticket.created"),
        LogEntry(t.id, T0, "started", SlaTargetKind.RESOLUTION, 0, {"version": 1}),
    ]
    async with units() as unit:
        await unit.store.append_log(entries[:1])
        await unit.store.append_log(entries[1:])
    async with units() as unit:
        assert await unit.store.log(t.id) == entries


async def test_the_postgres_log_is_append_only(pg_units: PgUnitFactory) -> None:
    async with pg_units() as unit:
        await unit.store.append_log([LogEntry(uuid.uuid4(), T0, "x")])
    with pytest.raises(psycopg.Error, match="append-only"):
        async with pg_units.pool.connection() as conn:
            await conn.execute("DELETE FROM sla.events")
