"""The SLA service on real PostgreSQL and the real queue: events in, deadline jobs firing at
their instant, breaches recorded once, events out."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from insightdesk.shared.contracts import SlaPolicyChanged, TicketStatus
from insightdesk.shared.queue import QueueClient
from insightdesk.shared.queue.broker import PgBroker
from insightdesk.sla import handlers
from insightdesk.sla.app import build_broker
from insightdesk.sla.clocks import Check, CheckKind
from insightdesk.sla.settings import SlaSettings
from insightdesk.sla.store import PgOutbox, PgUnit, PgUnitFactory
from tests.integration.helpers import wait_until
from tests.unit.sla.harness import AGENT, ORG, Harness, TicketStory, policy

OUT = ("sla.breached", "sla.warning", "sla.clock_changed")


@pytest.fixture
async def probes(client: QueueClient, sla_dsn: str) -> QueueClient:
    for event in OUT:
        await client.create_queue(f"probe.{event}")
        await client.subscribe(event, f"probe.{event}")
    return client


async def published(client: QueueClient, event: str) -> list[dict[str, Any]]:
    return [j.data for j in await client.find_jobs(f"probe.{event}", limit=1000)]


@pytest.fixture
async def service(
    sla_dsn: str, sla_pool: AsyncConnectionPool[Any], probes: QueueClient
) -> AsyncIterator[PgBroker]:
    settings = SlaSettings(database_url=sla_dsn, environment="test")
    broker, _ = build_broker(settings, units=lambda b: PgUnitFactory(sla_pool, b))
    await broker.start()
    yield broker
    await broker.stop()


async def test_a_missed_first_response_is_breached_at_its_instant_once(
    service: PgBroker, probes: QueueClient, sla_pool: AsyncConnectionPool[Any]
) -> None:
    now = datetime.now(UTC)
    await service.publish_event(
        "sla_policy.changed",
        SlaPolicyChanged(
            occurred_at=now, organization_id=ORG, policy_id=uuid.uuid4(), version=1, policy=policy()
        ),
    )
    h = Harness(now - timedelta(minutes=60) + timedelta(seconds=1.5))  # due 1.5 s from now
    late, answered = TicketStory(h), TicketStory(h)
    await wait_until(lambda: _policies(sla_pool), timeout=10)
    for t in (late, answered):
        await service.publish_event("ticket.created", t.created())
    h.clock.set(datetime.now(UTC))
    await service.publish_event("ticket.message_added", answered.reply(AGENT))

    async def breached() -> bool:
        return len(await published(probes, "sla.breached")) >= 1

    await wait_until(breached, timeout=15)
    await asyncio.sleep(0.5)  # room for a wrong second breach to show up
    breaches = await published(probes, "sla.breached")
    assert [(b["ticket_id"], b["target"]) for b in breaches] == [(str(late.id), "first_response")]
    fired = datetime.fromisoformat(breaches[0]["occurred_at"])
    due = datetime.fromisoformat(breaches[0]["due_at"])
    assert due == late.created_at + timedelta(minutes=60)
    assert fired >= due
    async with sla_pool.connection() as conn:
        rows = await (await conn.execute("SELECT ticket_id FROM sla.breaches")).fetchall()
    assert rows == [(late.id,)]
    changed = [
        c for c in await published(probes, "sla.clock_changed") if c["ticket_id"] == str(late.id)
    ]
    assert max(changed, key=lambda c: c["sequence"])["targets"][0]["breached"] is True


async def _policies(pool: AsyncConnectionPool[Any]) -> bool:
    async with pool.connection() as conn:
        row = await (await conn.execute("SELECT count(*) FROM sla.policies")).fetchone()
    return bool(row and row[0])


class DroppingOutbox(PgOutbox):
    """Loses every check job, as if the queue had lost them: only the scan can help."""

    async def schedule(self, checks: Sequence[Check]) -> int:
        return 0


async def test_the_scan_settles_deadlines_whose_jobs_were_lost(
    sla_pool: AsyncConnectionPool[Any], publisher: PgBroker, probes: QueueClient
) -> None:
    class Lossy(PgUnitFactory):
        def __init__(self) -> None:
            super().__init__(sla_pool, publisher)

    base = Lossy()

    @asynccontextmanager
    async def units() -> AsyncIterator[PgUnit]:
        async with base() as unit:
            yield PgUnit(unit.store, DroppingOutbox(publisher, unit.store.conn))

    h = Harness()
    calendars = handlers.CalendarCache()
    async with units() as unit:
        await handlers.on_policy_changed(
            SlaPolicyChanged(
                occurred_at=h.clock.now(),
                organization_id=ORG,
                policy_id=uuid.uuid4(),
                version=1,
                policy=policy(),
            ),
            unit=unit,
            calendars=calendars,
        )
    t = TicketStory(h)
    async with units() as unit:
        await handlers.on_ticket_event(t.created(), unit=unit, calendars=calendars)
    assert (
        await handlers.scan(
            units=units, calendars=calendars, now=h.clock.now() + timedelta(minutes=50)
        )
        == 1
    )
    assert (
        await handlers.scan(
            units=units, calendars=calendars, now=h.clock.now() + timedelta(minutes=61)
        )
        == 1
    )
    assert (
        await handlers.scan(
            units=units, calendars=calendars, now=h.clock.now() + timedelta(minutes=62)
        )
        == 0
    )
    assert [b["target"] for b in await published(probes, "sla.breached")] == ["first_response"]
    assert [w["target"] for w in await published(probes, "sla.warning")] == ["first_response"]


async def test_a_ticket_closed_while_its_deadline_jobs_run(
    pg_units: PgUnitFactory, probes: QueueClient
) -> None:
    """Close and deadline race on row locks: each ticket ends either breached-then-closed or
    closed-without-breach, never with a breach recorded after its close or twice."""
    h = Harness()
    calendars = handlers.CalendarCache()
    async with pg_units() as unit:
        await handlers.on_policy_changed(
            SlaPolicyChanged(
                occurred_at=h.clock.now(),
                organization_id=ORG,
                policy_id=uuid.uuid4(),
                version=1,
                policy=policy(),
            ),
            unit=unit,
            calendars=calendars,
        )
    stories = [TicketStory(h) for _ in range(12)]
    deadlines: dict[uuid.UUID, Check] = {}
    for t in stories:
        async with pg_units() as unit:
            await handlers.on_ticket_event(t.created(), unit=unit, calendars=calendars)
            c = (await unit.store.clocks([t.id]))[t.id]
            first = next(x for x in c if x.target.value == "first_response")
            assert first.due_at is not None
            deadlines[t.id] = Check(
                t.id, first.target, 0, first.version, CheckKind.DEADLINE, first.due_at
            )
    h.clock.advance(timedelta(minutes=60))

    async def check(t: TicketStory) -> str:
        async with pg_units() as unit:
            return (
                await handlers.run_check(
                    deadlines[t.id], unit=unit, calendars=calendars, now=h.clock.now()
                )
            ).outcome

    async def close(t: TicketStory) -> None:
        event = t.status_to(TicketStatus.CLOSED)
        async with pg_units() as unit:
            await handlers.on_ticket_event(event, unit=unit, calendars=calendars)

    outcomes = await asyncio.gather(*(f for t in stories for f in (check(t), close(t))))
    checks = outcomes[0::2]
    breaches = await published(probes, "sla.breached")
    assert len(breaches) == checks.count("done")
    assert len({b["ticket_id"] for b in breaches}) == len(breaches)
    async with pg_units() as unit:
        for t in stories:
            clocks = (await unit.store.clocks([t.id]))[t.id]
            assert {c.state.value for c in clocks} == {"stopped"}
