"""One transaction per request: the write, its event and its e-mails commit together, a failure
leaves none of them; ticket updates to one recipient within five minutes fold into one mail."""

from __future__ import annotations

import asyncio

import httpx
import psycopg
from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from insightdesk.shared.clock import SystemClock
from insightdesk.shared.health import Health
from insightdesk.shared.queue import QueueClient, make_pool
from insightdesk.shared.service import ProcessContext
from insightdesk.tickets.database import make_engine
from insightdesk.tickets.notifications import FLUSH_QUEUE
from insightdesk.tickets.settings import TicketsSettings
from insightdesk.tickets.subscribers import FLUSH_QUEUE_OPTIONS
from insightdesk.tickets.worker import build_worker_broker

from .conftest import AppFactory
from .desk import Probes, add_user, bootstrap, flush_now, open_ticket, put, reply


async def test_updates_within_the_window_fold_into_one_mail_with_everything(
    http: httpx.AsyncClient, probes: Probes, app: FastAPI
) -> None:
    org = await bootstrap(http)
    agent = await add_user(http, org, "Arne", "agent")
    customer = await add_user(http, org, "Carla")
    ticket = await open_ticket(http, customer)
    await put(http, org.admin, ticket["id"], "assignee", {"assignee_id": agent.id})
    await flush_now(app, probes.client)
    already = len(await probes.emails("ticket-update"))

    for body in ("m1", "m2", "m3"):  # three customer messages in a row
        await reply(http, customer, ticket["id"], body)
    await put(http, agent, ticket["id"], "status", {"status": "pending"})
    await put(http, agent, ticket["id"], "status", {"status": "resolved"})

    jobs = [j for j in await probes.client.find_jobs(FLUSH_QUEUE) if j.state.value == "created"]
    assert sorted(j.singleton_key or "" for j in jobs) == sorted(
        [f"notify:{ticket['id']}:{agent.id}", f"notify:{ticket['id']}:{customer.id}"]
    )
    first_update = min(e["occurred_at"] for e in await probes.events("ticket.message_added"))
    agent_job = next(j for j in jobs if j.singleton_key and agent.id in j.singleton_key)
    # the window runs from the first pending update, exactly (not a fixed slot)
    window = agent_job.start_after - agent_job.created_on
    assert abs(window.total_seconds() - 300) < 1, (window, first_update)
    assert await flush_now(app, probes.client) == 5  # 3 messages to the agent, 2 changes

    mails = (await probes.emails("ticket-update"))[already:]
    to_agent = [m for m in mails if m["to"] == agent.email]
    to_customer = [m for m in mails if m["to"] == customer.email]
    assert len(to_agent) == len(to_customer) == 1
    assert [u["body"] for u in to_agent[0]["context"]["updates"]] == ["m1", "m2", "m3"]
    statuses = [u["new_status"] for u in to_customer[0]["context"]["updates"]]
    assert statuses == ["pending", "resolved"]
    assert to_customer[0]["context"]["status"] == "resolved"
    assert len(await probes.events("ticket.message_added")) == 3


async def test_an_update_after_a_flush_goes_into_the_next_mail(
    http: httpx.AsyncClient, probes: Probes, app: FastAPI
) -> None:
    org = await bootstrap(http)
    agent = await add_user(http, org, "Arne", "agent")
    customer = await add_user(http, org, "Carla")
    one = await open_ticket(http, customer, "one")
    two = await open_ticket(http, customer, "two")

    await reply(http, agent, one["id"], "first")
    await reply(http, agent, two["id"], "other ticket")
    await flush_now(app, probes.client)
    await reply(http, agent, one["id"], "second")
    await flush_now(app, probes.client)
    assert await flush_now(app, probes.client) == 0  # nothing left, nothing mailed twice

    mails = await probes.emails("ticket-update", to=customer.email)
    assert sorted(
        (m["context"]["ticket_subject"], [u["body"] for u in m["context"]["updates"]])
        for m in mails
    ) == [("one", ["first"]), ("one", ["second"]), ("two", ["other ticket"])]


async def test_a_short_window_is_flushed_by_the_running_worker(
    make_app: AppFactory, probes: Probes, tickets_dsn: str, tracer_provider: TracerProvider
) -> None:
    settings = TicketsSettings(
        database_url=tickets_dsn,
        environment="test",
        notify_window_seconds=0.3,
        public_base_url="https://desk.example",
    )
    ctx = ProcessContext(
        service="tickets",
        process="worker",
        clock=SystemClock(),
        health=Health(),
        registry=CollectorRegistry(),
        tracer_provider=tracer_provider,
    )
    pool = make_pool(tickets_dsn, min_size=1, max_size=2)
    await pool.open(wait=True)
    engine = make_engine(tickets_dsn, pool_size=2, max_overflow=2)
    sessions = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
    worker = build_worker_broker(settings, pool, ctx=ctx, sessions=sessions)
    try:
        await worker.start()
        async with make_app(
            notify_window_seconds=0.3, public_base_url="https://desk.example"
        ) as app:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                org = await bootstrap(http)
                agent = await add_user(http, org, "Arne", "agent")
                customer = await add_user(http, org, "Carla")
                ticket = await open_ticket(http, customer)
                await reply(http, agent, ticket["id"], "On it.")
                await reply(http, agent, ticket["id"], "Fixed.")
                for _ in range(400):
                    if await probes.emails("ticket-update"):
                        break
                    await asyncio.sleep(0.05)
    finally:
        await worker.stop()
        await engine.dispose()
        await pool.close()
    [mail] = await probes.emails("ticket-update")
    assert [u["body"] for u in mail["context"]["updates"]] == ["On it.", "Fixed."]
    assert mail["context"]["ticket_url"] == f"https://desk.example/tickets/{ticket['id']}"


async def test_the_api_consumes_no_queue(app: FastAPI) -> None:
    """The flush consumer runs in the tickets worker; the API only publishes."""
    assert list(app.state.runtime.broker.subscribers) == []


async def test_a_request_failing_after_its_write_leaves_no_rows_and_no_jobs(
    app: FastAPI, http: httpx.AsyncClient, probes: Probes, client: QueueClient, tickets_dsn: str
) -> None:
    org = await bootstrap(http)
    agent = await add_user(http, org, "Arne", "agent")
    customer = await add_user(http, org, "Carla")
    ticket = await open_ticket(http, customer)
    # The reply below writes its message, updates the ticket and publishes its event; then
    # holding the customer's notification fails because its queue has gone.
    await client.delete_queue(FLUSH_QUEUE)

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as failing:
        response = await failing.post(
            f"/tickets/{ticket['id']}/messages", json={"body": "Fixed."}, headers=agent.auth
        )

    assert response.status_code == 500
    detail = (await http.get(f"/tickets/{ticket['id']}", headers=agent.auth)).json()
    assert detail["messages"] == []
    assert detail["first_response_at"] is None
    assert detail["updated_at"] == ticket["updated_at"]
    assert [p["id"] for p in detail["participants"]] == [customer.id]
    assert await probes.events("ticket.message_added") == []
    async with await psycopg.AsyncConnection.connect(tickets_dsn) as conn:
        cur = await conn.execute("SELECT count(*) FROM tickets.messages")
        assert await cur.fetchone() == (0,)


async def test_the_app_keeps_serving_after_a_failed_request(
    app: FastAPI, http: httpx.AsyncClient, probes: Probes, client: QueueClient
) -> None:
    org = await bootstrap(http)
    customer = await add_user(http, org, "Carla")
    ticket = await open_ticket(http, customer)
    await client.delete_queue(FLUSH_QUEUE)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as failing:
        failed = await failing.post(
            f"/tickets/{ticket['id']}/messages", json={"body": "x"}, headers=org.admin.auth
        )
    await client.create_queue(FLUSH_QUEUE, FLUSH_QUEUE_OPTIONS)

    ok = await reply(http, org.admin, ticket["id"], "Second try.")
    await flush_now(app, client)

    assert failed.status_code == 500
    assert [e["message_id"] for e in await probes.events("ticket.message_added")] == [ok["id"]]
    [mail] = await probes.emails("ticket-update")
    assert (mail["to"], [u["body"] for u in mail["context"]["updates"]]) == (
        customer.email,
        ["Second try."],
    )


async def test_concurrent_first_replies_yield_exactly_one_first_response(
    http: httpx.AsyncClient, probes: Probes
) -> None:
    org = await bootstrap(http)
    agents = [await add_user(http, org, name, "agent") for name in ("Arne", "Olga", "Ben")]
    ticket = await open_ticket(http, await add_user(http, org, "Carla"))

    await asyncio.gather(*(reply(http, agent, ticket["id"], "Mine!") for agent in agents))

    events = await probes.events("ticket.message_added")
    assert sorted(e["first_response"] for e in events) == [False, False, True]
    first = next(e for e in events if e["first_response"])
    detail = (await http.get(f"/tickets/{ticket['id']}", headers=org.admin.auth)).json()
    assert detail["first_response_at"] == first["ticket"]["first_response_at"]
