"""Authentication and roles: bearer tokens per user, 401 without a valid one, 403 by role."""

from __future__ import annotations

import hashlib

import httpx
import psycopg
import pytest

from .conftest import AppFactory
from .desk import Probes, add_user, bootstrap, open_ticket, put


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/tickets"),
        ("POST", "/tickets"),
        ("GET", "/tickets/00000000-0000-0000-0000-000000000001"),
        ("POST", "/users"),
        ("GET", "/users/me"),
    ],
)
async def test_requests_without_a_token_are_401_with_a_bearer_challenge(
    http: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await http.request(method, path, json={})

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {"detail": "missing bearer token"}


@pytest.mark.parametrize(
    "authorization", ["Bearer idk_not-a-real-token", "Basic YWRhOnNlY3JldA==", "Bearer"]
)
async def test_a_bad_token_is_401(http: httpx.AsyncClient, authorization: str) -> None:
    await bootstrap(http)

    response = await http.get("/tickets", headers={"Authorization": authorization})

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


async def test_the_token_is_returned_once_and_only_its_sha256_is_stored(
    http: httpx.AsyncClient, tickets_dsn: str
) -> None:
    org = await bootstrap(http)
    agent = await add_user(http, org, "Arne", "agent")

    me = await http.get("/users/me", headers=agent.auth)

    assert me.status_code == 200
    assert me.json()["id"] == agent.id and "api_token" not in me.json()
    async with await psycopg.AsyncConnection.connect(tickets_dsn) as conn:
        cur = await conn.execute(
            "SELECT api_token_hash FROM tickets.users WHERE id = %s", (agent.id,)
        )
        row = await cur.fetchone()
        dump = await conn.execute("SELECT row_to_json(u)::text FROM tickets.users u")
        rows = [r[0] for r in await dump.fetchall()]
    assert row == (hashlib.sha256(agent.token.encode()).hexdigest(),)
    assert not any(agent.token in r or org.admin.token in r for r in rows)


@pytest.mark.parametrize("role", ["agent", "customer"])
async def test_only_admins_create_users(http: httpx.AsyncClient, probes: Probes, role: str) -> None:
    org = await bootstrap(http)
    member = await add_user(http, org, "Mia", role)
    registered = len(await probes.events("user.registered"))

    response = await http.post(
        "/users", json={"email": "eve@acme.example", "name": "Eve"}, headers=member.auth
    )

    assert response.status_code == 403
    assert response.json() == {"detail": "only an admin may create users"}
    assert len(await probes.events("user.registered")) == registered


async def test_customers_cannot_assign_change_priority_or_set_pending(
    http: httpx.AsyncClient, probes: Probes
) -> None:
    org = await bootstrap(http)
    agent = await add_user(http, org, "Arne", "agent")
    customer = await add_user(http, org, "Carla")
    ticket = await open_ticket(http, customer)

    assigned = await put(http, customer, ticket["id"], "assignee", {"assignee_id": agent.id})
    prioritised = await put(http, customer, ticket["id"], "priority", {"priority": "urgent"})
    pending = await put(http, customer, ticket["id"], "status", {"status": "pending"})

    assert [assigned.status_code, prioritised.status_code, pending.status_code] == [403] * 3
    assert assigned.json() == {"detail": "only an agent or admin may assign tickets"}
    after = (await http.get(f"/tickets/{ticket['id']}", headers=customer.auth)).json()
    assert (after["assignee"], after["priority"], after["status"]) == (None, "normal", "open")
    for event in ("ticket.assigned", "ticket.priority_changed", "ticket.status_changed"):
        assert await probes.events(event) == []


async def test_a_customer_may_resolve_their_own_ticket(http: httpx.AsyncClient) -> None:
    org = await bootstrap(http)
    customer = await add_user(http, org, "Carla")
    ticket = await open_ticket(http, customer)

    response = await put(http, customer, ticket["id"], "status", {"status": "resolved"})

    assert response.status_code == 200
    assert response.json()["status"] == "resolved"


async def test_the_bootstrap_endpoint_can_be_disabled(make_app: AppFactory) -> None:
    async with make_app(allow_bootstrap=False) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            response = await http.post(
                "/organizations", json={"name": "Acme", "admin": {"email": "a@a.io", "name": "A"}}
            )
            spec = (await http.get("/openapi.json")).json()

    assert response.status_code in {404, 405}
    assert "/organizations" not in spec["paths"]
    assert "/tickets" in spec["paths"]
