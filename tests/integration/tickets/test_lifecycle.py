"""The worker's lifecycle jobs against real PostgreSQL: auto-close (per-organization days,
keyset batches, one event and one mail per ticket even with two runs at once or a rerun) and
cleanup (archived tickets leave the default listing, stay readable by id)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from insightdesk.shared.queue import make_pool
from insightdesk.shared.queue.broker import PgBroker
from insightdesk.tickets.lifecycle import archive_closed, auto_close
from insightdesk.tickets.lifecycle_store import PgLifecycleStore

from .desk import Member, Org, Probes, add_user, bootstrap, open_ticket, put

NOW = datetime.now(UTC)


@pytest.fixture
async def store(tickets_dsn: str) -> AsyncIterator[PgLifecycleStore]:
    pool: AsyncConnectionPool[Any] = make_pool(tickets_dsn, min_size=1, max_size=4)
    await pool.open(wait=True)
    broker = PgBroker(tickets_dsn, max_size=2)
    await broker.start()
    try:
        yield PgLifecycleStore(pool, broker)
    finally:
        await broker.stop()
        await pool.close()


async def resolved_ticket(
    http: httpx.AsyncClient, org: Org, customer: Member, days_ago: float, dsn: str
) -> str:
    ticket = await open_ticket(http, customer)
    answer = await put(http, org.admin, ticket["id"], "status", {"status": "resolved"})
    assert answer.status_code == 200, answer.text
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        await conn.execute(
            "UPDATE tickets.tickets SET resolved_at = %s WHERE id = %s",
            (NOW - timedelta(days=days_ago), ticket["id"]),
        )
    return str(ticket["id"])


async def status_of(http: httpx.AsyncClient, by: Member, ticket_id: str) -> str:
    response = await http.get(f"/tickets/{ticket_id}", headers=by.auth)
    assert response.status_code == 200, response.text
    return str(response.json()["status"])


async def test_auto_close_honours_each_organizations_days_and_mails_the_customer_once(
    http: httpx.AsyncClient, probes: Probes, store: PgLifecycleStore, tickets_dsn: str
) -> None:
    acme, never = await bootstrap(http, "Acme"), await bootstrap(http, "Never")
    assert (
        await http.patch(
            "/organizations/me", json={"auto_close_after_days": 0}, headers=never.admin.auth
        )
    ).status_code == 200
    cleo, nina = await add_user(http, acme, "Cleo"), await add_user(http, never, "Nina")
    old = await resolved_ticket(http, acme, cleo, 8, tickets_dsn)
    recent = await resolved_ticket(http, acme, cleo, 3, tickets_dsn)
    kept = await resolved_ticket(http, never, nina, 400, tickets_dsn)
    still_open = await open_ticket(http, cleo)

    result = await auto_close(store=store, now=NOW)

    assert (result.done, result.finished) == (1, True)
    assert await status_of(http, cleo, old) == "closed"
    assert await status_of(http, cleo, recent) == "resolved"
    assert await status_of(http, nina, kept) == "resolved"
    assert await status_of(http, cleo, still_open["id"]) == "open"
    [event] = await probes.events("ticket.closed")
    assert event["reason"] == "auto" and event["ticket"]["id"] == old
    assert event["ticket"]["status"] == "closed" and event["ticket"]["customer"]["id"] == cleo.id
    [mail] = await probes.emails("ticket-closed")
    assert mail["to"] == cleo.email and mail["context"]["resolved_days"] == 8
    assert mail["locale"] == "en"


async def test_two_runs_at_once_and_a_rerun_close_each_ticket_once_in_batches(
    http: httpx.AsyncClient, probes: Probes, store: PgLifecycleStore, tickets_dsn: str
) -> None:
    org = await bootstrap(http)
    customers = [await add_user(http, org, f"C{i}") for i in range(3)]
    due = [await resolved_ticket(http, org, customers[i % 3], 8 + i, tickets_dsn) for i in range(9)]

    first, second = await asyncio.gather(
        auto_close(store=store, now=NOW, batch_size=2),
        auto_close(store=store, now=NOW, batch_size=2),
    )
    rerun = await auto_close(store=store, now=NOW, batch_size=2)

    assert first.done + second.done == 9 and rerun.done == 0
    assert max(first.batches, second.batches) >= 3  # keyset pages, not one giant statement
    closed = [e["ticket"]["id"] for e in await probes.events("ticket.closed")]
    assert sorted(closed) == sorted(due)
    mails = await probes.emails("ticket-closed")
    assert len(mails) == 9 and len({m["idempotency_key"] for m in mails}) == 9


async def test_a_ticket_reopened_before_the_run_stays_open(
    http: httpx.AsyncClient, probes: Probes, store: PgLifecycleStore, tickets_dsn: str
) -> None:
    org = await bootstrap(http)
    cleo = await add_user(http, org, "Cleo")
    ticket = await resolved_ticket(http, org, cleo, 10, tickets_dsn)
    reopened = await put(http, org.admin, ticket, "status", {"status": "open"})
    assert reopened.status_code == 200

    assert (await auto_close(store=store, now=NOW)).done == 0
    assert await status_of(http, cleo, ticket) == "open"
    assert await probes.emails("ticket-closed") == []


async def test_cleanup_archives_long_closed_tickets_out_of_the_default_listing(
    http: httpx.AsyncClient, probes: Probes, store: PgLifecycleStore, tickets_dsn: str
) -> None:
    org = await bootstrap(http)
    cleo = await add_user(http, org, "Cleo")
    ancient = await resolved_ticket(http, org, cleo, 500, tickets_dsn)
    young = await resolved_ticket(http, org, cleo, 30, tickets_dsn)
    await auto_close(store=store, now=NOW)
    async with await psycopg.AsyncConnection.connect(tickets_dsn) as conn:
        await conn.execute(
            "UPDATE tickets.tickets SET closed_at = %s WHERE id = %s",
            (NOW - timedelta(days=400), ancient),
        )

    result = await archive_closed(store=store, now=NOW, after_days=365, batch_size=1)
    again = await archive_closed(store=store, now=NOW, after_days=365)

    assert (result.done, again.done) == (1, 0)
    listed = (await http.get("/tickets", headers=org.admin.auth)).json()["items"]
    assert [t["id"] for t in listed] == [young]
    with_archived = await http.get("/tickets", params={"archived": "true"}, headers=org.admin.auth)
    assert {t["id"] for t in with_archived.json()["items"]} == {young, ancient}
    single = await http.get(f"/tickets/{ancient}", headers=cleo.auth)
    assert single.status_code == 200 and single.json()["archived_at"] is not None
