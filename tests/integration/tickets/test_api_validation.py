"""Bad input is a 422 with a body that names the field; impossible changes are a 409."""

from __future__ import annotations

from typing import Any

import httpx

from .desk import Probes, add_user, bootstrap, open_ticket, put


def errors(response: httpx.Response) -> list[tuple[Any, str]]:
    assert response.status_code == 422, response.text
    return [(tuple(e["loc"]), e["type"]) for e in response.json()["detail"]]


async def test_a_ticket_without_a_subject_is_422_naming_the_field(http: httpx.AsyncClient) -> None:
    org = await bootstrap(http)
    customer = await add_user(http, org, "Carla")

    missing = await http.post("/tickets", json={}, headers=customer.auth)
    blank = await http.post("/tickets", json={"subject": "   "}, headers=customer.auth)

    assert errors(missing) == [(("body", "subject"), "missing")]
    assert errors(blank) == [(("body", "subject"), "string_too_short")]
    assert "msg" in missing.json()["detail"][0]


async def test_unknown_values_and_fields_are_422(http: httpx.AsyncClient) -> None:
    org = await bootstrap(http)
    customer = await add_user(http, org, "Carla")
    ticket = await open_ticket(http, customer)

    status = await put(http, org.admin, ticket["id"], "status", {"status": "done"})
    priority = await http.post(
        "/tickets", json={"subject": "x", "priority": "whenever"}, headers=customer.auth
    )
    extra = await http.post(
        "/tickets", json={"subject": "x", "urgent": True}, headers=customer.auth
    )
    bad_id = await http.get("/tickets/not-a-uuid", headers=customer.auth)
    bad_limit = await http.get("/tickets?limit=0", headers=customer.auth)

    assert errors(status) == [(("body", "status"), "enum")]
    assert "'open', 'pending', 'resolved' or 'closed'" in status.json()["detail"][0]["msg"]
    assert errors(priority) == [(("body", "priority"), "enum")]
    assert errors(extra) == [(("body", "urgent"), "extra_forbidden")]
    assert errors(bad_id) == [(("path", "ticket_id"), "uuid_parsing")]
    assert errors(bad_limit) == [(("query", "limit"), "greater_than_equal")]


async def test_a_user_needs_a_real_email_and_a_known_role(http: httpx.AsyncClient) -> None:
    org = await bootstrap(http)

    bad_email = await http.post(
        "/users", json={"email": "carla", "name": "Carla"}, headers=org.admin.auth
    )
    bad_role = await http.post(
        "/users",
        json={"email": "c@acme.example", "name": "Carla", "role": "owner"},
        headers=org.admin.auth,
    )

    assert errors(bad_email) == [(("body", "email"), "value_error")]
    assert "email address" in bad_email.json()["detail"][0]["msg"]
    assert errors(bad_role) == [(("body", "role"), "enum")]


async def test_an_email_is_unique_per_organization(http: httpx.AsyncClient, probes: Probes) -> None:
    acme, globex = await bootstrap(http, "Acme"), await bootstrap(http, "Globex")
    body = {"email": "Carla@Example.com", "name": "Carla"}
    first = await http.post("/users", json=body, headers=acme.admin.auth)
    registered = len(await probes.events("user.registered"))

    again = await http.post(
        "/users", json={**body, "email": "carla@example.com"}, headers=acme.admin.auth
    )
    elsewhere = await http.post("/users", json=body, headers=globex.admin.auth)

    assert first.status_code == 201 and first.json()["user"]["email"] == "carla@example.com"
    assert again.status_code == 409
    assert again.json() == {
        "detail": "a user with e-mail carla@example.com already exists in this organization"
    }
    assert elsewhere.status_code == 201
    # the refused registration left no event and no welcome e-mail behind
    assert len(await probes.events("user.registered")) == registered + 1
    assert len(await probes.emails("welcome", to="carla@example.com")) == 2


async def test_a_closed_ticket_accepts_no_change(http: httpx.AsyncClient, probes: Probes) -> None:
    org = await bootstrap(http)
    agent = await add_user(http, org, "Arne", "agent")
    customer = await add_user(http, org, "Carla")
    ticket = await open_ticket(http, customer)
    closed = await put(http, agent, ticket["id"], "status", {"status": "closed"})
    assert closed.status_code == 200

    reopen = await put(http, agent, ticket["id"], "status", {"status": "open"})
    message = await http.post(
        f"/tickets/{ticket['id']}/messages", json={"body": "hello?"}, headers=customer.auth
    )
    assign = await put(http, agent, ticket["id"], "assignee", {"assignee_id": agent.id})
    priority = await put(http, agent, ticket["id"], "priority", {"priority": "high"})

    assert [r.status_code for r in (reopen, message, assign, priority)] == [409] * 4
    assert reopen.json() == {"detail": "the ticket is closed; a closed ticket cannot change"}
    assert message.json() == {"detail": "the ticket is closed; cannot add a message"}
    assert len(await probes.events("ticket.status_changed")) == 1
    assert await probes.events("ticket.message_added") == []
