"""One contract for the reports store: PostgreSQL and the in-memory twin, fed the same events,
answer the same (apply once, newer snapshot wins, send once, figures, trend, exports)."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from insightdesk.reports.digest import WEEKLY, period, report_period, zone
from insightdesk.reports.facts import facts_for
from insightdesk.reports.handlers import ReportStore
from insightdesk.reports.memory import InMemoryReportStore
from insightdesk.reports.store import PgReportStore
from insightdesk.shared.contracts import (
    ClockState,
    Event,
    ExportFilters,
    OrganizationCreated,
    OrganizationSnapshot,
    Role,
    SendEmail,
    SlaBreached,
    SlaClockChanged,
    SlaTargetKind,
    SlaWarning,
    TicketAssigned,
    TicketClosed,
    TicketCreated,
    TicketMessageAdded,
    TicketPriority,
    TicketSlaTarget,
    TicketSnapshot,
    TicketStatus,
    TicketStatusChanged,
    UserRef,
    UserRegistered,
)
from insightdesk.shared.queue import make_pool

NOW = datetime(2026, 3, 30, 6, 0, tzinfo=UTC)
ORG = uuid.UUID(int=500)
TZ = "America/New_York"


def event_stream(seed: int = 3, tickets: int = 150) -> list[Event]:
    """A realistic history: an organization, agents, tickets with replies, status changes,
    assignments, closes, SLA warnings and breaches."""
    rng = random.Random(seed)
    snapshot = OrganizationSnapshot(
        id=ORG, name="Big Apple", time_zone=TZ, locale="en", created_at=NOW - timedelta(days=90)
    )
    out: list[Event] = [OrganizationCreated(occurred_at=snapshot.created_at, organization=snapshot)]
    agents = [
        UserRef(
            id=uuid.UUID(int=600 + i), email=f"a{i}@x.example", name=f"Agent {i}", role=Role.AGENT
        )
        for i in range(4)
    ]
    out += [
        UserRegistered(
            occurred_at=NOW - timedelta(days=80), user=a, organization_id=ORG, organization_name="x"
        )
        for a in agents
    ]
    for i in range(tickets):
        customer = UserRef(
            id=uuid.UUID(int=10_000 + i), email=f"c{i}@x.example", name=f"C {i}", role=Role.CUSTOMER
        )
        created = NOW - timedelta(minutes=rng.randrange(10, 14 * 24 * 60))
        state: dict[str, Any] = {
            "id": uuid.UUID(int=20_000 + i),
            "organization_id": ORG,
            "subject": f"T{i}" if i % 13 else f"=cmd {i}",
            "status": TicketStatus.OPEN,
            "priority": rng.choice(list(TicketPriority)),
            "customer": customer,
            "created_at": created,
        }

        def snap(state: dict[str, Any] = state) -> TicketSnapshot:
            return TicketSnapshot(**state)

        at = created
        out.append(TicketCreated(occurred_at=at, ticket=snap(), created_by=customer))
        agent = rng.choice(agents)
        if rng.random() < 0.7:
            at += timedelta(minutes=rng.randrange(1, 300))
            state["assignee"] = agent
            out.append(
                TicketAssigned(occurred_at=at, ticket=snap(), assignee=agent, assigned_by=agent)
            )
        if rng.random() < 0.5:
            due = created + timedelta(hours=2)
            out.append(
                SlaWarning(
                    occurred_at=due - timedelta(minutes=20),
                    ticket_id=state["id"],
                    organization_id=ORG,
                    target="first_response",
                    due_at=due,
                )
            )
        if rng.random() < 0.8:
            at += timedelta(minutes=rng.randrange(1, 400))
            if at < NOW:
                state["first_response_at"] = at
                out.append(
                    SlaClockChanged(
                        occurred_at=at,
                        ticket_id=state["id"],
                        organization_id=ORG,
                        sequence=2,
                        targets=[
                            TicketSlaTarget(
                                target=SlaTargetKind.FIRST_RESPONSE,
                                state=ClockState.FULFILLED,
                                due_at=created + timedelta(hours=2),
                            ),
                            TicketSlaTarget(
                                target=SlaTargetKind.RESOLUTION,
                                state=ClockState.RUNNING,
                                due_at=created + timedelta(hours=30),
                            ),
                        ],
                    )
                )
                out.append(
                    TicketMessageAdded(
                        occurred_at=at,
                        ticket=snap(),
                        message_id=uuid.uuid4(),
                        author=agent,
                        body="hi",
                        first_response=True,
                    )
                )
        elif rng.random() < 0.5:
            due = created + timedelta(hours=2)
            if due < NOW:
                out.append(
                    SlaBreached(
                        occurred_at=due,
                        ticket_id=state["id"],
                        organization_id=ORG,
                        target="first_response",
                        due_at=due,
                    )
                )
        if rng.random() < 0.5:
            at += timedelta(minutes=rng.randrange(1, 3000))
            if at < NOW:
                state.update(status=TicketStatus.RESOLVED, resolved_at=at)
                out.append(
                    TicketStatusChanged(
                        occurred_at=at,
                        ticket=snap(),
                        old_status=TicketStatus.OPEN,
                        new_status=TicketStatus.RESOLVED,
                        changed_by=agent,
                    )
                )
                at += timedelta(minutes=rng.randrange(1, 3000))
                if at < NOW and rng.random() < 0.3:
                    state.update(status=TicketStatus.OPEN, resolved_at=None)
                    out.append(
                        TicketStatusChanged(
                            occurred_at=at,
                            ticket=snap(),
                            old_status=TicketStatus.RESOLVED,
                            new_status=TicketStatus.OPEN,
                            changed_by=customer,
                        )
                    )
                elif at < NOW and rng.random() < 0.5:
                    state.update(status=TicketStatus.CLOSED, closed_at=at)
                    out.append(TicketClosed(occurred_at=at, ticket=snap()))
    return out


@pytest.fixture(params=["postgres", "memory"])
async def any_store(request: pytest.FixtureRequest, reports_dsn: str) -> AsyncIterator[Any]:
    published: list[SendEmail | Event] = []
    if request.param == "memory":
        store = InMemoryReportStore()
        yield store, store.published
        return

    async def publish(message: SendEmail | Event, conn: Any) -> None:
        published.append(message)

    pool = make_pool(reports_dsn, min_size=1, max_size=4)
    await pool.open()
    try:
        yield PgReportStore(pool, publish), published
    finally:
        await pool.close()


async def feed(store: ReportStore, events: list[Event]) -> int:
    applied = 0
    for event in events:
        change = facts_for(event)
        assert change is not None
        applied += await store.apply(change)
    return applied


async def test_each_event_applies_once(any_store: Any) -> None:
    store, _ = any_store
    events = event_stream(tickets=20)
    assert await feed(store, events) == len(events)
    assert await feed(store, list(reversed(events))) == 0
    [org] = await store.organizations()
    assert (org.id, org.name, org.time_zone) == (ORG, "Big Apple", TZ)
    assert [r["name"] for r in await store.recipients(ORG)] == [f"Agent {i}" for i in range(4)]


async def test_a_run_is_sent_once(any_store: Any) -> None:
    store, published = any_store
    mail = SendEmail(to="a@x.example", template="daily-digest", idempotency_key="k")
    assert await store.send_once("daily-digest", ORG, date(2026, 3, 1), [mail])
    assert not await store.send_once("daily-digest", ORG, date(2026, 3, 1), [mail])
    assert await store.send_once("weekly-report", ORG, date(2026, 3, 1), [mail])
    assert len(published) == 2


async def test_expired_exports_come_back_until_marked(any_store: Any) -> None:
    store, _ = any_store
    for hours in (1, 30):
        await store.finish_export(
            {
                "export_id": uuid.UUID(int=hours),
                "organization_id": ORG,
                "storage_key": f"exports/{hours}.csv",
                "format": "csv",
                "rows": 1,
                "size_bytes": 10,
                "created_at": NOW,
                "expires_at": NOW + timedelta(hours=hours),
            },
            [],
        )
    later = NOW + timedelta(hours=2)
    assert await store.expired_exports(later) == [(uuid.UUID(int=1), "exports/1.csv")]
    await store.mark_export_deleted(uuid.UUID(int=1), later)
    assert await store.expired_exports(later) == []


async def test_postgres_and_the_twin_compute_the_same_reports(reports_dsn: str) -> None:
    events = event_stream()
    memory = InMemoryReportStore()
    pool = make_pool(reports_dsn, min_size=1, max_size=4)
    await pool.open()
    try:
        pg = PgReportStore(pool)
        rng = random.Random(5)
        shuffled = events[:]
        rng.shuffle(shuffled)  # out-of-order delivery: the newer snapshot must still win
        for store in (pg, memory):
            await feed(store, shuffled)
        tz = zone(TZ)
        spans = [period(date(2026, 3, 16) + timedelta(days=i), 1, tz) for i in range(14)]
        spans.append(report_period(WEEKLY, date(2026, 3, 23), tz))
        busy = sla_seen = 0
        for span in spans:
            a, b = await pg.figures(ORG, span, NOW), await memory.figures(ORG, span, NOW)
            assert a.new == b.new and a.solved == b.solved and a.closed == b.closed, span
            assert a.reopened == b.reopened and a.unassigned == b.unassigned
            assert a.backlog_by_status == b.backlog_by_status
            assert a.backlog_by_age == b.backlog_by_age
            for name in (
                "first_response_median",
                "first_response_p90",
                "resolution_median",
                "resolution_p90",
            ):
                x, y = getattr(a, name), getattr(b, name)
                assert (x is None and y is None) or x == pytest.approx(y), name
            assert a.sla == b.sla and a.sla_breaches == b.sla_breaches and a.at_risk == b.at_risk
            sla_seen += bool(a.sla) + a.at_risk
            assert a.agents == b.agents
            busy += a.activity
        assert busy >= 10 and sla_seen > 0
        targets = (await pg.figures(ORG, spans[-1], NOW)).sla
        assert set(targets) == {"first_response", "resolution"}
        week = spans[-1]
        assert await pg.trend(ORG, week, TZ) == await memory.trend(ORG, week, TZ)
        assert await pg.response_histogram(ORG, week) == await memory.response_histogram(ORG, week)
        filters = ExportFilters(
            created_from=NOW - timedelta(days=9), statuses=[TicketStatus.OPEN, TicketStatus.CLOSED]
        )
        pg_rows = [tuple(r) async for r in pg.export_rows(ORG, filters)]
        mem_rows = [tuple(r) async for r in memory.export_rows(ORG, filters)]
        assert pg_rows == mem_rows and len(pg_rows) > 20
    finally:
        await pool.close()
