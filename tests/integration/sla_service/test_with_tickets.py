"""The seed's SLA scenarios through the whole path: the tickets API, the SLA service and the
tickets worker's SLA consumers, on one real database and queue.

The tickets API runs on a clock 59 min 58 s behind, so a ticket it opens "now" has its
60-minute first-response deadline two seconds from now on the real clock: the deadline job
fires at its instant, without a test that waits an hour.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from psycopg_pool import AsyncConnectionPool

from insightdesk.shared.queue import QueueClient
from insightdesk.shared.queue.broker import PgBroker
from insightdesk.sla.app import build_broker
from insightdesk.sla.settings import SlaSettings
from insightdesk.sla.store import PgUnitFactory
from insightdesk.tickets.app import create_app
from insightdesk.tickets.database import migrate_database
from insightdesk.tickets.settings import TicketsSettings
from insightdesk.tickets.sla_consumers import register_sla_consumers
from tests.integration.helpers import wait_until
from tests.integration.tickets.desk import (
    OPERATOR_TOKEN,
    add_user,
    bootstrap,
    open_ticket,
    put,
    reply,
)

LAG = timedelta(minutes=60) - timedelta(seconds=2)


class LaggingClock:
    def now(self) -> datetime:
        return datetime.now(UTC) - LAG


@pytest.fixture
async def desk(
    sla_dsn: str, sla_pool: AsyncConnectionPool[Any]
) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    await migrate_database(sla_dsn)
    settings = TicketsSettings(
        database_url=sla_dsn, environment="test", operator_token=OPERATOR_TOKEN
    )
    app = create_app(settings, clock=LaggingClock())
    sla_broker, _ = build_broker(
        SlaSettings(database_url=sla_dsn, environment="test"),
        units=lambda b: PgUnitFactory(sla_pool, b),
    )
    worker = PgBroker(sla_dsn, logger=None, max_size=4)
    async with app.router.lifespan_context(app):
        register_sla_consumers(worker, app.state.runtime.sessions)
        await sla_broker.start()
        await worker.start()
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t.test") as http:
                yield http, app
        finally:
            await worker.stop()
            await sla_broker.stop()


async def emails(client: QueueClient, template: str) -> list[dict[str, Any]]:
    return [
        j.data
        for j in await client.find_jobs("email", limit=1000)
        if j.data["template"] == template
    ]


async def test_first_response_missed_mails_assignee_or_agents_and_admins_once(
    desk: tuple[httpx.AsyncClient, FastAPI], client: QueueClient, sla_pool: AsyncConnectionPool[Any]
) -> None:
    http, _ = desk
    org = await bootstrap(http, "Acme", "Ada")
    bob = await add_user(http, org, "Bob", "agent")
    carl = await add_user(http, org, "Carl", "agent")
    cleo = await add_user(http, org, "Cleo", "customer")
    policy = {
        "name": "standard",
        "is_default": True,
        "targets": [
            {
                "priority": "normal",
                "first_response": {"minutes": 60, "mode": "calendar"},
                "resolution": {"minutes": 600, "mode": "calendar"},
            }
        ],
        "escalation": [{"after_minutes": 30}],
    }
    created = await http.post("/sla/policies", json=policy, headers=org.admin.auth)
    assert created.status_code == 201, created.text

    async def policy_known() -> bool:
        async with sla_pool.connection() as conn:
            row = await (await conn.execute("SELECT count(*) FROM sla.policies")).fetchone()
        return bool(row and row[0])

    await wait_until(policy_known)
    assigned = await open_ticket(http, cleo, "Assigned")
    unassigned = await open_ticket(http, cleo, "Unassigned")
    answered = await open_ticket(http, cleo, "Answered")
    assert (
        await put(http, org.admin, assigned["id"], "assignee", {"assignee_id": bob.id})
    ).status_code == 200
    await reply(http, bob, answered["id"])

    async def mailed() -> bool:
        return len(await emails(client, "sla-breached")) >= 5

    await wait_until(mailed, timeout=20)
    await asyncio.sleep(0.5)
    mails = await emails(client, "sla-breached")
    by_ticket = {
        t["id"]: sorted(m["to"] for m in mails if m["context"]["ticket_id"] == t["id"])
        for t in (assigned, unassigned, answered)
    }
    assert by_ticket == {
        assigned["id"]: sorted([bob.email, org.admin.email]),
        unassigned["id"]: sorted([bob.email, carl.email, org.admin.email]),
        answered["id"]: [],
    }
    assert {m["context"]["target"] for m in mails} == {"first_response"}
    async with sla_pool.connection() as conn:
        rows = await (await conn.execute("SELECT count(*) FROM sla.breaches")).fetchone()
    assert rows == (2,)

    async def reported() -> bool:
        listing = await http.get("/tickets", params={"sla": "breached"}, headers=org.admin.auth)
        return {t["id"] for t in listing.json()["items"]} == {assigned["id"], unassigned["id"]}

    await wait_until(reported, timeout=10)
    detail = (await http.get(f"/tickets/{assigned['id']}", headers=org.admin.auth)).json()
    targets = {t["target"]: t for t in detail["sla"]["targets"]}
    assert targets["first_response"]["breached"] is True
    assert targets["resolution"]["state"] == "running"
    answered_detail = (await http.get(f"/tickets/{answered['id']}", headers=org.admin.auth)).json()
    assert {t["target"]: t["state"] for t in answered_detail["sla"]["targets"]}[
        "first_response"
    ] == "fulfilled"
