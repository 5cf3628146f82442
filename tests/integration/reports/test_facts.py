"""Facts from events: each event applied once, an older snapshot never overwrites a newer one."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import psycopg

from insightdesk.reports.facts import facts_for
from insightdesk.reports.store import PgReportStore
from insightdesk.shared.contracts import (
    Role,
    SlaBreached,
    TicketCreated,
    TicketMessageAdded,
    TicketPriority,
    TicketSnapshot,
    TicketStatus,
    TicketStatusChanged,
    UserRef,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ORG = uuid.UUID(int=42)
CUSTOMER = UserRef(id=uuid.UUID(int=1), email="c@example.com", name="Cleo", role=Role.CUSTOMER)
AGENT = UserRef(id=uuid.UUID(int=2), email="a@example.com", name="Ada", role=Role.AGENT)


def _snapshot(status: TicketStatus = TicketStatus.OPEN, **kw: object) -> TicketSnapshot:
    return TicketSnapshot(
        id=uuid.UUID(int=7),
        organization_id=ORG,
        subject="Printer",
        status=status,
        priority=TicketPriority.HIGH,
        customer=CUSTOMER,
        created_at=T0,
        **kw,
    )


async def _count(dsn: str, table: str) -> int:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cur = await conn.execute(f"SELECT count(*) FROM reports.{table}")  # fixed names
        row = await cur.fetchone()
        assert row is not None
        return int(row[0])


async def test_the_same_event_twice_changes_nothing(store: PgReportStore, reports_dsn: str) -> None:
    created = TicketCreated(occurred_at=T0, ticket=_snapshot(), created_by=CUSTOMER)
    reply = TicketMessageAdded(
        occurred_at=T0 + timedelta(minutes=30),
        ticket=_snapshot(first_response_at=T0 + timedelta(minutes=30), assignee=AGENT),
        message_id=uuid.UUID(int=9),
        author=AGENT,
        body="On it",
        first_response=True,
    )
    for event in (created, reply):
        change = facts_for(event)
        assert change is not None
        assert await store.apply(change) is True
    snapshot = {t: await _count(reports_dsn, t) for t in ("ticket_events", "tickets", "users")}
    again = facts_for(TicketMessageAdded.model_validate(reply.model_dump(mode="json")))
    assert again is not None
    assert await store.apply(again) is False
    assert {t: await _count(reports_dsn, t) for t in snapshot} == snapshot
    assert snapshot == {"ticket_events": 2, "tickets": 1, "users": 1}


async def test_an_older_snapshot_does_not_overwrite_a_newer_one(
    store: PgReportStore, reports_dsn: str
) -> None:
    resolved = TicketStatusChanged(
        occurred_at=T0 + timedelta(hours=2),
        ticket=_snapshot(TicketStatus.RESOLVED, resolved_at=T0 + timedelta(hours=2)),
        old_status=TicketStatus.OPEN,
        new_status=TicketStatus.RESOLVED,
        changed_by=AGENT,
    )
    created = TicketCreated(occurred_at=T0, ticket=_snapshot(), created_by=CUSTOMER)
    for event in (resolved, created):  # delivered out of order
        change = facts_for(event)
        assert change is not None
        await store.apply(change)
    async with await psycopg.AsyncConnection.connect(reports_dsn) as conn:
        cur = await conn.execute("SELECT status, resolved_at FROM reports.tickets")
        assert await cur.fetchall() == [("resolved", T0 + timedelta(hours=2))]


async def test_sla_breach_is_an_outcome_and_organizations_are_seen(
    store: PgReportStore, reports_dsn: str
) -> None:
    breach = SlaBreached(
        occurred_at=T0 + timedelta(hours=1),
        ticket_id=uuid.UUID(int=7),
        organization_id=ORG,
        target="first_response",
        due_at=T0 + timedelta(hours=1),
    )
    change = facts_for(breach)
    assert change is not None
    assert await store.apply(change)
    assert not await store.apply(change)
    async with await psycopg.AsyncConnection.connect(reports_dsn) as conn:
        cur = await conn.execute("SELECT target, breached_at FROM reports.sla_outcomes")
        assert await cur.fetchall() == [("first_response", T0 + timedelta(hours=1))]
    orgs = await store.organizations()
    assert [(o.id, o.time_zone) for o in orgs] == [(ORG, "UTC")]
