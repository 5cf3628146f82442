"""One transaction per request: the write, its event and its e-mails commit together, a failure
leaves none of them; ticket notifications are deduplicated for five minutes."""

from __future__ import annotations

import asyncio
import time

import httpx
import psycopg
from fastapi import FastAPI

from insightdesk.shared.queue import QueueClient

from .desk import Probes, add_user, bootstrap, open_ticket, reply

DEDUPE_SECONDS = 300


async def away_from_a_throttle_slot_edge(margin: float = 5.0) -> None:
    """The engine throttles in fixed slots (pg-boss's singletonSeconds); two sends that
    straddle a slot boundary are both kept. Start such a test well inside a slot."""
    into_slot = time.time() % DEDUPE_SECONDS
    if into_slot > DEDUPE_SECONDS - margin:
        await asyncio.sleep(DEDUPE_SECONDS - into_slot + 0.5)


async def test_two_messages_within_five_minutes_mail_a_recipient_once(
    http: httpx.AsyncClient, probes: Probes
) -> None:
    org = await bootstrap(http)
    agent = await add_user(http, org, "Arne", "agent")
    customer = await add_user(http, org, "Carla")
    ticket = await open_ticket(http, customer)
    await away_from_a_throttle_slot_edge()

    first = await reply(http, agent, ticket["id"], "Looking into it.")
    await reply(http, agent, ticket["id"], "Found it.")

    jobs = await probes.email_jobs("ticket-new-message", to=customer.email)
    assert len(jobs) == 1
    assert jobs[0].data["context"]["body"] == "Looking into it."
    assert jobs[0].data["idempotency_key"].endswith(first["id"])
    assert jobs[0].singleton_key == f"{ticket['id']}:{customer.id}:ticket-new-message"
    # both messages were stored and published; only the e-mail was throttled
    assert len(await probes.events("ticket.message_added")) == 2


async def test_dedupe_is_per_ticket_recipient_and_type(
    http: httpx.AsyncClient, probes: Probes
) -> None:
    org = await bootstrap(http)
    agent = await add_user(http, org, "Arne", "agent")
    customer = await add_user(http, org, "Carla")
    one = await open_ticket(http, customer, "one")
    two = await open_ticket(http, customer, "two")
    await away_from_a_throttle_slot_edge()

    await reply(http, agent, one["id"])
    await reply(http, agent, two["id"])
    await http.put(f"/tickets/{one['id']}/status", json={"status": "pending"}, headers=agent.auth)

    mails = await probes.emails(to=customer.email)
    assert sorted(
        (m["template"], m["context"]["ticket_subject"]) for m in mails if m["template"] != "welcome"
    ) == [
        ("ticket-new-message", "one"),
        ("ticket-new-message", "two"),
        ("ticket-status-change", "one"),
    ]


async def test_a_request_failing_after_its_write_leaves_no_rows_and_no_jobs(
    app: FastAPI, http: httpx.AsyncClient, probes: Probes, client: QueueClient, tickets_dsn: str
) -> None:
    org = await bootstrap(http)
    agent = await add_user(http, org, "Arne", "agent")
    customer = await add_user(http, org, "Carla")
    ticket = await open_ticket(http, customer)
    # The reply below writes its message, updates the ticket and publishes its event; then
    # queueing the customer's e-mail fails because the queue has gone.
    await client.delete_queue("email")

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
    await client.delete_queue("email")
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as failing:
        failed = await failing.post(
            f"/tickets/{ticket['id']}/messages", json={"body": "x"}, headers=org.admin.auth
        )
    await client.create_queue("email")

    ok = await reply(http, org.admin, ticket["id"], "Second try.")

    assert failed.status_code == 500
    assert [e["message_id"] for e in await probes.events("ticket.message_added")] == [ok["id"]]
    assert [m["to"] for m in await probes.emails("ticket-new-message")] == [customer.email]


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
