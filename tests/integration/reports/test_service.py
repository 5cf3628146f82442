"""The reports subscribers against real PostgreSQL: events published by others become facts, a
scheduler tick plans per-organization digests whose mails land in the ``email`` queue, an
``ExportReport`` becomes a file, a ``report.export_ready`` event and a ``report-ready`` mail."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from insightdesk.reports.app import build_broker, declare_queues, publisher
from insightdesk.reports.settings import ReportsSettings
from insightdesk.reports.store import PgReportStore
from insightdesk.shared.clock import FakeClock
from insightdesk.shared.contracts import (
    ExportReport,
    OrganizationCreated,
    OrganizationSnapshot,
    Role,
    TicketCreated,
    TicketMessageAdded,
    TicketPriority,
    TicketSnapshot,
    TicketStatus,
    UserRef,
    UserRegistered,
)
from insightdesk.shared.queue import JobOptions, JobState, QueueClient, make_pool
from insightdesk.shared.queue.broker import PgBroker
from insightdesk.shared.storage import LocalStorage

from ..helpers import wait_for_state, wait_until

ORG = uuid.UUID(int=77)
# Tuesday 2026-03-03 08:00 in Auckland (NZDT, +13) is Monday 19:00 UTC
TICK = datetime(2026, 3, 2, 19, 0, tzinfo=UTC)
YESTERDAY = datetime(2026, 3, 1, 22, 0, tzinfo=UTC)  # Monday 11:00 in Auckland
AGENT = UserRef(id=uuid.UUID(int=2), email="arne@kiwi.example", name="Arne", role=Role.AGENT)
CUSTOMER = UserRef(
    id=uuid.UUID(int=3), email="carla@kiwi.example", name="Carla", role=Role.CUSTOMER
)


@pytest.fixture
async def running(
    reports_dsn: str, client: QueueClient, tmp_path: Path
) -> AsyncIterator[tuple[PgBroker, FakeClock, LocalStorage]]:
    await declare_queues(client)
    for probe, event in (("probe-ready", "report.export_ready"),):
        await client.create_queue(probe)
        await client.subscribe(event, probe)
    settings = ReportsSettings(database_url=reports_dsn, environment="test", signing_key="x" * 32)
    clock = FakeClock(TICK + timedelta(minutes=1))
    storage = LocalStorage(tmp_path / "store")
    pool = make_pool(reports_dsn, min_size=1, max_size=4)
    await pool.open()
    broker = build_broker(
        settings,
        store=lambda b: PgReportStore(pool, publisher(b)),
        storage=storage,
        clock=clock,
    )
    await broker.start()
    try:
        yield broker, clock, storage
    finally:
        await broker.stop()
        await pool.close()


def ticket(**kw: Any) -> TicketSnapshot:
    return TicketSnapshot(
        id=uuid.UUID(int=9),
        organization_id=ORG,
        subject="Sheep escaped",
        status=TicketStatus.OPEN,
        priority=TicketPriority.URGENT,
        customer=CUSTOMER,
        created_at=YESTERDAY,
        **kw,
    )


async def count(dsn: str, sql: str) -> int:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cur = await conn.execute(sql)  # fixed test statements
        row = await cur.fetchone()
        assert row is not None
        return int(row[0])


async def test_events_become_facts_and_a_tick_sends_the_digest_at_local_eight(
    running: Any, client: QueueClient, reports_dsn: str
) -> None:
    events = [
        OrganizationCreated(
            occurred_at=YESTERDAY - timedelta(days=30),
            organization=OrganizationSnapshot(
                id=ORG,
                name="Kiwi Desk",
                time_zone="Pacific/Auckland",
                locale="de",
                created_at=YESTERDAY - timedelta(days=30),
            ),
        ),
        UserRegistered(
            occurred_at=YESTERDAY - timedelta(days=20),
            user=AGENT,
            organization_id=ORG,
            organization_name="Kiwi Desk",
        ),
        TicketCreated(occurred_at=YESTERDAY, ticket=ticket(), created_by=CUSTOMER),
        TicketMessageAdded(
            occurred_at=YESTERDAY + timedelta(minutes=20),
            ticket=ticket(assignee=AGENT, first_response_at=YESTERDAY + timedelta(minutes=20)),
            message_id=uuid.UUID(int=10),
            author=AGENT,
            body="Fetching them",
            first_response=True,
        ),
    ]
    for event in events:
        await client.publish(event.name, event.model_dump(mode="json"))
    await client.publish(events[-1].name, events[-1].model_dump(mode="json"))  # a duplicate

    async def facts_in() -> bool:
        return await count(reports_dsn, "SELECT count(*) FROM reports.processed_events") == 4

    await wait_until(facts_in, timeout=20)
    await wait_until(lambda: _queue_empty(client, "reports-events"), timeout=20)
    assert await count(reports_dsn, "SELECT count(*) FROM reports.ticket_events") == 2

    # what the scheduler's daily-digest schedule fires (body and headers)
    tick = await client.send(
        "reports",
        {"kind": "daily-digest"},
        JobOptions(headers={"schedule": "daily-digest", "slot": TICK.isoformat()}),
    )
    assert tick is not None
    await wait_for_state(client, tick, JobState.COMPLETED, timeout=20)

    async def mailed() -> bool:
        return len(await client.find_jobs("email", limit=10)) == 1

    await wait_until(mailed, timeout=20)
    [mail] = await client.find_jobs("email", limit=10)
    assert mail.data["template"] == "daily-digest"
    assert mail.data["to"] == AGENT.email
    assert mail.data["locale"] == "de"
    assert mail.data["context"]["new"] == 1
    assert mail.data["context"]["period_label"] == "2026-03-02"

    # the same tick again (a second scheduler, a retry) sends nothing more
    again = await client.send(
        "reports", {"schedule": "daily-digest"}, JobOptions(headers={"slot": TICK.isoformat()})
    )
    assert again is not None
    await wait_for_state(client, again, JobState.COMPLETED, timeout=20)
    await wait_until(lambda: _queue_empty(client, "reports"), timeout=20)
    assert len(await client.find_jobs("email", limit=10)) == 1


async def test_an_export_command_ends_in_a_file_an_event_and_a_mail(
    running: Any, client: QueueClient
) -> None:
    _, _, storage = running
    command = ExportReport(
        export_id=uuid.uuid4(),
        organization_id=ORG,
        requested_by=AGENT.id,
        requester_email=AGENT.email,
        requester_name=AGENT.name,
    )
    job = await client.send(ExportReport.queue, command.model_dump(mode="json"))
    assert job is not None
    await wait_for_state(client, job, JobState.COMPLETED, timeout=30)
    [ready] = await client.find_jobs("probe-ready", limit=10)
    assert ready.data["export_id"] == str(command.export_id)
    assert ready.data["rows"] == 0
    assert ready.data["download_url"].startswith("http://127.0.0.1:8005/downloads/")
    [mail] = await client.find_jobs("email", limit=10)
    assert mail.data["template"] == "report-ready"
    assert await storage.exists(f"exports/{ORG}/{command.export_id}.csv")


async def test_a_body_of_no_known_shape_is_dead_lettered_at_once(
    running: Any, client: QueueClient
) -> None:
    job = await client.send("reports-events", {"what": "is this"})
    assert job is not None
    await wait_for_state(client, job, JobState.FAILED, timeout=20)
    assert (await client.get_job(job)).retry_count == 0


async def _queue_empty(client: QueueClient, queue: str) -> bool:
    jobs = await client.find_jobs(queue, limit=100)
    return all(j.state in (JobState.COMPLETED, JobState.FAILED) for j in jobs)
