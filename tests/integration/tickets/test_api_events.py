"""Each write publishes its domain event (with the ticket's state) and queues its e-mails."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from .desk import Probes, add_user, bootstrap, flush_now, open_ticket, put, reply


async def test_bootstrap_registers_the_admin_and_queues_a_welcome_email(
    http: httpx.AsyncClient, probes: Probes
) -> None:
    org = await bootstrap(http, "Acme Support", "Ada")

    [event] = await probes.events("user.registered")
    [welcome] = await probes.emails("welcome")
    assert event["user"] == {
        "schema_version": 1,
        "id": org.admin.id,
        "email": "ada@acme-support.example",
        "name": "Ada",
        "role": "admin",
    }
    assert (event["organization_id"], event["organization_name"]) == (org.id, "Acme Support")
    assert welcome["to"] == "ada@acme-support.example"
    assert welcome["context"] == {
        "name": "Ada",
        "recipient_name": "Ada",
        "organization_name": "Acme Support",
    }
    assert welcome["idempotency_key"] == f"welcome:{org.admin.id}"


async def test_creating_a_user_publishes_user_registered_and_queues_the_welcome_email(
    http: httpx.AsyncClient, probes: Probes
) -> None:
    org = await bootstrap(http)

    agent = await add_user(http, org, "Arne", "agent")

    events = await probes.events("user.registered")
    assert [e["user"]["id"] for e in events] == [org.admin.id, agent.id]
    assert events[1]["user"]["role"] == "agent"
    assert [m["to"] for m in await probes.emails("welcome")] == [org.admin.email, agent.email]


async def test_opening_a_ticket_publishes_ticket_created_with_its_snapshot(
    http: httpx.AsyncClient, probes: Probes
) -> None:
    org = await bootstrap(http)
    agent = await add_user(http, org, "Arne", "agent")
    customer = await add_user(http, org, "Carla")

    ticket = await open_ticket(
        http, agent, "Printer on fire", priority="high", customer_id=customer.id
    )

    [event] = await probes.events("ticket.created")
    snapshot = event["ticket"]
    assert snapshot["id"] == ticket["id"]
    assert snapshot["organization_id"] == org.id
    assert (snapshot["subject"], snapshot["status"], snapshot["priority"]) == (
        "Printer on fire",
        "open",
        "high",
    )
    assert snapshot["customer"]["id"] == customer.id and snapshot["assignee"] is None
    assert event["created_by"]["id"] == agent.id
    assert ticket["created_at"] == ticket["updated_at"]
    opened = await probes.emails("ticket-opened")
    # the customer's receipt, and the unassigned ticket's notice to staff but its opener
    assert sorted((m["to"], m["context"]["for_customer"]) for m in opened) == sorted(
        [(customer.email, True), (org.admin.email, False)]
    )


async def test_an_opening_body_is_a_message_but_not_a_first_response(
    http: httpx.AsyncClient, probes: Probes, app: FastAPI
) -> None:
    org = await bootstrap(http)
    agent = await add_user(http, org, "Arne", "agent")
    customer = await add_user(http, org, "Carla")

    ticket = await open_ticket(
        http, agent, "Your order", customer_id=customer.id, body="We opened this for you."
    )

    [added] = await probes.events("ticket.message_added")
    assert added["first_response"] is False
    assert added["author"]["id"] == agent.id
    assert {p["id"] for p in added["participants"]} == {customer.id, agent.id}
    assert await probes.emails("ticket-update") == []  # held for the window
    assert await flush_now(app, probes.client) == 1
    [mail] = await probes.emails("ticket-update")
    assert mail["to"] == customer.email
    assert [u["body"] for u in mail["context"]["updates"]] == ["We opened this for you."]
    detail = (await http.get(f"/tickets/{ticket['id']}", headers=customer.auth)).json()
    assert [m["body"] for m in detail["messages"]] == ["We opened this for you."]
    assert detail["first_response_at"] is None


async def test_the_first_staff_reply_is_the_first_response(
    http: httpx.AsyncClient, probes: Probes
) -> None:
    org = await bootstrap(http)
    agent = await add_user(http, org, "Arne", "agent")
    customer = await add_user(http, org, "Carla")
    ticket = await open_ticket(http, customer)

    await reply(http, customer, ticket["id"], "Anyone there?")
    first = await reply(http, agent, ticket["id"], "Yes, looking into it.")
    await reply(http, org.admin, ticket["id"], "Escalated.")

    events = await probes.events("ticket.message_added")
    assert [e["first_response"] for e in events] == [False, True, False]
    assert events[1]["message_id"] == first["id"]
    assert events[1]["body"] == "Yes, looking into it."
    assert events[1]["ticket"]["first_response_at"] is not None
    detail = (await http.get(f"/tickets/{ticket['id']}", headers=agent.auth)).json()
    assert detail["first_response_at"] == first["created_at"]
    assert [p["id"] for p in detail["participants"]] == [customer.id, agent.id, org.admin.id]


async def test_a_new_message_mails_every_participant_except_its_author(
    http: httpx.AsyncClient, probes: Probes, app: FastAPI
) -> None:
    org = await bootstrap(http)
    agent = await add_user(http, org, "Arne", "agent")
    helper = await add_user(http, org, "Olga", "agent")
    bystander = await add_user(http, org, "Ben", "agent")
    customer = await add_user(http, org, "Carla")
    ticket = await open_ticket(http, customer)
    await reply(http, helper, ticket["id"], "I saw this before.")  # for the customer
    await put(http, org.admin, ticket["id"], "assignee", {"assignee_id": agent.id})
    await flush_now(app, probes.client)
    before = {m["to"] for m in await probes.emails("ticket-update")}

    await reply(http, customer, ticket["id"], "Thanks!")
    await flush_now(app, probes.client)

    mails = [
        m
        for m in await probes.emails("ticket-update")
        if any(u.get("body") == "Thanks!" for u in m["context"]["updates"])
    ]
    assert sorted(m["to"] for m in mails) == sorted([agent.email, helper.email])
    assert before == {customer.email, agent.email}  # the agent: the assignment
    assert bystander.email not in {m["to"] for m in await probes.emails("ticket-update")}
    mail = next(m for m in mails if m["to"] == helper.email)
    assert mail["context"] == {
        "recipient_name": "Olga",
        "ticket_id": ticket["id"],
        "ticket_subject": "Printer on fire",
        "status": "open",
        "updates": [
            {
                "kind": "message",
                "at": mail["context"]["updates"][0]["at"],
                "by_name": "Carla",
                "body": "Thanks!",
            }
        ],
    }


async def test_a_status_change_publishes_it_and_mails_customer_and_assignee(
    http: httpx.AsyncClient, probes: Probes, app: FastAPI
) -> None:
    org = await bootstrap(http)
    agent = await add_user(http, org, "Arne", "agent")
    customer = await add_user(http, org, "Carla")
    ticket = await open_ticket(http, customer)
    await put(http, agent, ticket["id"], "assignee", {"assignee_id": agent.id})

    response = await put(http, org.admin, ticket["id"], "status", {"status": "resolved"})

    assert response.status_code == 200
    assert response.json()["resolved_at"] is not None
    [event] = await probes.events("ticket.status_changed")
    assert (event["old_status"], event["new_status"]) == ("open", "resolved")
    assert event["changed_by"]["id"] == org.admin.id
    assert event["ticket"]["resolved_at"] is not None
    assert {p["id"] for p in event["participants"]} == {customer.id, agent.id}
    await flush_now(app, probes.client)
    mails = await probes.emails("ticket-update")
    assert sorted(m["to"] for m in mails) == sorted([customer.email, agent.email])
    [change] = next(m for m in mails if m["to"] == customer.email)["context"]["updates"]
    assert (change["by_name"], change["old_status"], change["new_status"]) == (
        "Ada",
        "open",
        "resolved",
    )
    assert await probes.events("ticket.closed") == []


async def test_closing_publishes_status_changed_and_ticket_closed(
    http: httpx.AsyncClient, probes: Probes, app: FastAPI
) -> None:
    org = await bootstrap(http)
    agent = await add_user(http, org, "Arne", "agent")
    customer = await add_user(http, org, "Carla")
    ticket = await open_ticket(http, customer)

    closed = (await put(http, agent, ticket["id"], "status", {"status": "closed"})).json()

    [changed] = await probes.events("ticket.status_changed")
    [event] = await probes.events("ticket.closed")
    assert changed["new_status"] == "closed"
    assert event["ticket"]["status"] == "closed"
    assert event["ticket"]["closed_at"] is not None
    assert closed["closed_at"] is not None and closed["resolved_at"] is not None
    # the agent closed it: only the customer is told (the ticket has no assignee)
    await flush_now(app, probes.client)
    assert [m["to"] for m in await probes.emails("ticket-update")] == [customer.email]


async def test_a_customer_reply_reopens_a_pending_ticket(
    http: httpx.AsyncClient, probes: Probes
) -> None:
    org = await bootstrap(http)
    agent = await add_user(http, org, "Arne", "agent")
    customer = await add_user(http, org, "Carla")
    ticket = await open_ticket(http, customer)
    await put(http, agent, ticket["id"], "status", {"status": "pending"})

    await reply(http, customer, ticket["id"], "Here is the log you asked for.")

    detail = (await http.get(f"/tickets/{ticket['id']}", headers=agent.auth)).json()
    assert detail["status"] == "open"
    changes = await probes.events("ticket.status_changed")
    assert [(c["old_status"], c["new_status"]) for c in changes] == [
        ("open", "pending"),
        ("pending", "open"),
    ]
    assert changes[1]["changed_by"]["id"] == customer.id


async def test_assigning_publishes_ticket_assigned_and_mails_the_new_assignee(
    http: httpx.AsyncClient, probes: Probes, app: FastAPI
) -> None:
    org = await bootstrap(http)
    agent = await add_user(http, org, "Arne", "agent")
    other = await add_user(http, org, "Olga", "agent")
    customer = await add_user(http, org, "Carla")
    ticket = await open_ticket(http, customer)

    first = await put(http, org.admin, ticket["id"], "assignee", {"assignee_id": agent.id})
    second = await put(http, org.admin, ticket["id"], "assignee", {"assignee_id": other.id})

    assert first.json()["assignee"]["id"] == agent.id
    assert second.json()["assignee"]["id"] == other.id
    events = await probes.events("ticket.assigned")
    assert [e["assignee"]["id"] for e in events] == [agent.id, other.id]
    assert [e["previous_assignee_id"] for e in events] == [None, agent.id]
    assert events[1]["assigned_by"]["id"] == org.admin.id
    assert events[1]["ticket"]["assignee"]["id"] == other.id
    await flush_now(app, probes.client)
    mails = await probes.emails("ticket-update")
    assert sorted(m["to"] for m in mails) == sorted([agent.email, other.email])
    [assigned] = next(m for m in mails if m["to"] == agent.email)["context"]["updates"]
    assert (assigned["kind"], assigned["by_name"]) == ("assigned", "Ada")
    # the former assignee, who wrote nothing, no longer participates
    detail = (await http.get(f"/tickets/{ticket['id']}", headers=other.auth)).json()
    assert [p["id"] for p in detail["participants"]] == [customer.id, other.id]


async def test_self_assignment_publishes_but_mails_nobody(
    http: httpx.AsyncClient, probes: Probes, app: FastAPI
) -> None:
    org = await bootstrap(http)
    agent = await add_user(http, org, "Arne", "agent")
    ticket = await open_ticket(http, await add_user(http, org, "Carla"))

    await put(http, agent, ticket["id"], "assignee", {"assignee_id": agent.id})

    assert len(await probes.events("ticket.assigned")) == 1
    assert await flush_now(app, probes.client) == 0
    assert await probes.emails("ticket-update") == []


async def test_a_priority_change_publishes_priority_changed(
    http: httpx.AsyncClient, probes: Probes
) -> None:
    org = await bootstrap(http)
    agent = await add_user(http, org, "Arne", "agent")
    ticket = await open_ticket(http, await add_user(http, org, "Carla"))

    response = await put(http, agent, ticket["id"], "priority", {"priority": "urgent"})

    assert response.json()["priority"] == "urgent"
    [event] = await probes.events("ticket.priority_changed")
    assert (event["old_priority"], event["new_priority"]) == ("normal", "urgent")
    assert event["ticket"]["priority"] == "urgent"
    assert event["changed_by"]["id"] == agent.id


async def test_setting_what_is_already_set_publishes_nothing(
    http: httpx.AsyncClient, probes: Probes
) -> None:
    org = await bootstrap(http)
    agent = await add_user(http, org, "Arne", "agent")
    ticket = await open_ticket(http, await add_user(http, org, "Carla"))

    same = [
        await put(http, agent, ticket["id"], "status", {"status": "open"}),
        await put(http, agent, ticket["id"], "priority", {"priority": "normal"}),
        await put(http, agent, ticket["id"], "assignee", {"assignee_id": None}),
    ]

    assert [r.status_code for r in same] == [200, 200, 200]
    for event in ("ticket.status_changed", "ticket.priority_changed", "ticket.assigned"):
        assert await probes.events(event) == []
