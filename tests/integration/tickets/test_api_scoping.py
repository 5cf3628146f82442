"""Every query is scoped to the caller's organization; customers see only their own tickets."""

from __future__ import annotations

import httpx

from .desk import Probes, add_user, bootstrap, open_ticket, put


async def test_another_organizations_ticket_is_404_everywhere(
    http: httpx.AsyncClient, probes: Probes
) -> None:
    acme, globex = await bootstrap(http, "Acme"), await bootstrap(http, "Globex")
    customer = await add_user(http, acme, "Carla")
    ticket = await open_ticket(http, customer)
    intruder = globex.admin
    path = f"/tickets/{ticket['id']}"

    responses = [
        await http.get(path, headers=intruder.auth),
        await http.post(f"{path}/messages", json={"body": "hi"}, headers=intruder.auth),
        await put(http, intruder, ticket["id"], "status", {"status": "closed"}),
        await put(http, intruder, ticket["id"], "assignee", {"assignee_id": intruder.id}),
        await put(http, intruder, ticket["id"], "priority", {"priority": "low"}),
    ]

    assert [r.status_code for r in responses] == [404] * 5
    assert responses[0].json() == {"detail": f"ticket {ticket['id']} not found"}
    unchanged = (await http.get(path, headers=acme.admin.auth)).json()
    assert (unchanged["status"], unchanged["assignee"], unchanged["priority"]) == (
        "open",
        None,
        "normal",
    )
    assert unchanged["messages"] == []
    assert await probes.events("ticket.message_added") == []


async def test_listing_shows_only_the_callers_organization(http: httpx.AsyncClient) -> None:
    acme, globex = await bootstrap(http, "Acme"), await bootstrap(http, "Globex")
    mine = await open_ticket(http, await add_user(http, acme, "Carla"), "Acme ticket")
    await open_ticket(http, await add_user(http, globex, "Gus"), "Globex ticket")

    listed = (await http.get("/tickets", headers=acme.admin.auth)).json()

    assert [t["id"] for t in listed["items"]] == [mine["id"]]


async def test_a_customer_sees_only_their_own_tickets(http: httpx.AsyncClient) -> None:
    org = await bootstrap(http)
    carla, carl = await add_user(http, org, "Carla"), await add_user(http, org, "Carl")
    hers = await open_ticket(http, carla, "Carla's")
    his = await open_ticket(http, carl, "Carl's")

    listed = (await http.get("/tickets", headers=carla.auth)).json()
    other = await http.get(f"/tickets/{his['id']}", headers=carla.auth)
    reply = await http.post(
        f"/tickets/{his['id']}/messages", json={"body": "me too"}, headers=carla.auth
    )
    staff_view = (await http.get("/tickets", headers=org.admin.auth)).json()

    assert [t["id"] for t in listed["items"]] == [hers["id"]]
    assert (other.status_code, reply.status_code) == (404, 404)
    assert {t["id"] for t in staff_view["items"]} == {hers["id"], his["id"]}


async def test_tickets_are_listed_newest_first_and_filtered(http: httpx.AsyncClient) -> None:
    org = await bootstrap(http)
    agent = await add_user(http, org, "Arne", "agent")
    customer = await add_user(http, org, "Carla")
    first = await open_ticket(http, customer, "first")
    second = await open_ticket(http, customer, "second")
    await put(http, agent, first["id"], "assignee", {"assignee_id": agent.id})
    await put(http, agent, second["id"], "status", {"status": "pending"})

    everything = (await http.get("/tickets", headers=agent.auth)).json()
    pending = (await http.get("/tickets?status=pending", headers=agent.auth)).json()
    mine = (await http.get(f"/tickets?assignee_id={agent.id}", headers=agent.auth)).json()
    page = (await http.get("/tickets?limit=1&offset=1", headers=agent.auth)).json()

    assert [t["subject"] for t in everything["items"]] == ["second", "first"]
    assert [t["subject"] for t in pending["items"]] == ["second"]
    assert [t["subject"] for t in mine["items"]] == ["first"]
    assert ([t["subject"] for t in page["items"]], page["limit"], page["offset"]) == (
        ["first"],
        1,
        1,
    )


async def test_tickets_are_assigned_only_to_staff_of_the_same_organization(
    http: httpx.AsyncClient, probes: Probes
) -> None:
    acme, globex = await bootstrap(http, "Acme"), await bootstrap(http, "Globex")
    customer = await add_user(http, acme, "Carla")
    outsider = await add_user(http, globex, "Olga", "agent")
    ticket = await open_ticket(http, customer)

    foreign = await put(http, acme.admin, ticket["id"], "assignee", {"assignee_id": outsider.id})
    to_customer = await put(
        http, acme.admin, ticket["id"], "assignee", {"assignee_id": customer.id}
    )

    assert (foreign.status_code, to_customer.status_code) == (422, 422)
    assert foreign.json() == {
        "detail": [
            {
                "type": "not_found",
                "loc": ["body", "assignee_id"],
                "msg": "no user with this id in your organization",
            }
        ]
    }
    assert to_customer.json()["detail"][0]["type"] == "not_staff"
    assert await probes.events("ticket.assigned") == []


async def test_staff_open_tickets_for_a_customer_of_their_organization(
    http: httpx.AsyncClient,
) -> None:
    acme, globex = await bootstrap(http, "Acme"), await bootstrap(http, "Globex")
    agent = await add_user(http, acme, "Arne", "agent")
    customer = await add_user(http, acme, "Carla")
    foreign = await add_user(http, globex, "Gus")

    missing = await http.post("/tickets", json={"subject": "x"}, headers=agent.auth)
    elsewhere = await http.post(
        "/tickets", json={"subject": "x", "customer_id": foreign.id}, headers=agent.auth
    )
    for_agent = await http.post(
        "/tickets", json={"subject": "x", "customer_id": agent.id}, headers=agent.auth
    )
    ok = await open_ticket(http, agent, customer_id=customer.id)

    assert [r.status_code for r in (missing, elsewhere, for_agent)] == [422, 422, 422]
    assert missing.json()["detail"][0]["loc"] == ["body", "customer_id"]
    assert ok["customer"]["id"] == customer.id


async def test_a_customer_cannot_open_a_ticket_for_someone_else(http: httpx.AsyncClient) -> None:
    org = await bootstrap(http)
    carla, carl = await add_user(http, org, "Carla"), await add_user(http, org, "Carl")

    response = await http.post(
        "/tickets", json={"subject": "x", "customer_id": carl.id}, headers=carla.auth
    )

    assert response.status_code == 403
