"""Hostile input from an API client: every case is a clear 4xx problem body, never a 500, and
nothing is written (no row, no event, no e-mail job)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from insightdesk.shared.errors import ConfigurationError
from insightdesk.tickets.app import create_app
from insightdesk.tickets.settings import TicketsSettings

from .conftest import AppFactory
from .desk import OPERATOR, Probes, add_user, bootstrap, open_ticket

NUL, SURROGATE, BEL, ESC = "\\u0000", "\\ud800", "\\u0007", "\\u001b"  # JSON escapes


def problem(response: httpx.Response) -> list[tuple[tuple[Any, ...], str]]:
    assert 400 <= response.status_code < 500, response.text
    return [(tuple(e["loc"]), e["type"]) for e in response.json()["detail"]]


async def post_raw(
    http: httpx.AsyncClient, path: str, raw: str, headers: dict[str, str]
) -> httpx.Response:
    """Send ``raw`` as the JSON body, byte for byte (escapes stay escapes)."""
    return await http.post(
        path, content=raw.encode(), headers={**headers, "Content-Type": "application/json"}
    )


async def nothing_written(http: httpx.AsyncClient, probes: Probes, token: dict[str, str]) -> None:
    listing = await http.get("/tickets", headers=token)
    assert listing.json()["items"] == []
    for event in ("ticket.created", "ticket.message_added"):
        assert await probes.events(event) == []


@pytest.mark.parametrize(
    ("escape", "kind"),
    [(NUL, "control_character"), (SURROGATE, "lone_surrogate"), (BEL, "control_character")],
)
async def test_bad_characters_in_a_subject_are_422_and_nothing_is_written(
    http: httpx.AsyncClient, probes: Probes, escape: str, kind: str
) -> None:
    org = await bootstrap(http)
    customer = await add_user(http, org, "Carla")

    response = await post_raw(http, "/tickets", f'{{"subject": "a{escape}b"}}', customer.auth)

    assert response.status_code == 422
    assert problem(response) == [(("body", "subject"), kind)]
    assert "position 1" in response.json()["detail"][0]["msg"]
    await nothing_written(http, probes, customer.auth)


@pytest.mark.parametrize(
    ("escape", "kind"),
    [(NUL, "control_character"), (SURROGATE, "lone_surrogate"), (ESC, "control_character")],
)
async def test_message_bodies_take_tab_cr_lf_only(
    http: httpx.AsyncClient, probes: Probes, escape: str, kind: str
) -> None:
    org = await bootstrap(http)
    customer = await add_user(http, org, "Carla")
    ticket = await open_ticket(http, customer)
    path = f"/tickets/{ticket['id']}/messages"

    bad = await post_raw(http, path, f'{{"body": "hi{escape}there"}}', customer.auth)
    good = await post_raw(http, path, '{"body": "line 1\\r\\n\\tline 2"}', customer.auth)

    assert problem(bad) == [(("body", "body"), kind)]
    assert good.status_code == 201 and good.json()["body"] == "line 1\r\n\tline 2"
    assert len(await probes.events("ticket.message_added")) == 1


@pytest.mark.parametrize("escape", [NUL, SURROGATE, BEL, ESC, "\\n"])
async def test_names_and_addresses_refuse_control_characters(
    http: httpx.AsyncClient, probes: Probes, escape: str
) -> None:
    org = await bootstrap(http)
    user_name = await post_raw(
        http, "/users", f'{{"email": "c@acme.example", "name": "C{escape}"}}', org.admin.auth
    )
    user_email = await post_raw(
        http, "/users", f'{{"email": "c{escape}@acme.example", "name": "C"}}', org.admin.auth
    )
    org_name = await post_raw(
        http,
        "/organizations",
        f'{{"name": "Evil{escape}Corp", "admin": {{"email": "e@evil.example", "name": "E"}}}}',
        OPERATOR,
    )
    admin_name = await post_raw(
        http,
        "/organizations",
        f'{{"name": "Evil", "admin": {{"email": "e@evil.example", "name": "E{escape}"}}}}',
        OPERATOR,
    )

    assert problem(user_name)[0][0] == ("body", "name")
    assert problem(user_email)[0][0] == ("body", "email")
    assert problem(org_name)[0][0] == ("body", "name")
    assert problem(admin_name)[0][0] == ("body", "admin", "name")
    assert len(await probes.events("user.registered")) == 1  # the bootstrap admin only


@pytest.mark.parametrize("offset", ["9223372036854775808", "1e30", "-1", "1000001"])
async def test_out_of_range_integers_are_422(http: httpx.AsyncClient, offset: str) -> None:
    org = await bootstrap(http)

    response = await http.get(f"/tickets?offset={offset}", headers=org.admin.auth)

    assert response.status_code == 422
    assert [loc for loc, _ in problem(response)] == [("query", "offset")]


async def test_a_nan_in_a_raw_body_is_422(http: httpx.AsyncClient, probes: Probes) -> None:
    org = await bootstrap(http)
    customer = await add_user(http, org, "Carla")

    response = await post_raw(http, "/tickets", '{"subject": NaN}', customer.auth)

    assert problem(response) == [(("body", "subject"), "string_type")]
    await nothing_written(http, probes, customer.auth)


async def test_a_huge_invalid_body_gets_a_small_error_naming_field_and_rule(
    http: httpx.AsyncClient, probes: Probes
) -> None:
    org = await bootstrap(http)
    customer = await add_user(http, org, "Carla")
    huge = "x" * 10_000_000

    too_long = await post_raw(http, "/tickets", json.dumps({"subject": huge}), customer.auth)
    huge_key = await post_raw(
        http, "/tickets", json.dumps({"subject": "ok", huge: 1}), customer.auth
    )

    assert problem(too_long) == [(("body", "subject"), "string_too_long")]
    assert len(too_long.content) < 1_000
    assert problem(huge_key)[0][1] == "extra_forbidden"
    assert len(huge_key.content) < 1_000
    await nothing_written(http, probes, customer.auth)


BAD_ADDRESSES = [
    "a@example..com",
    "a@-example.com",
    "a" * 65 + "@example.com",
    "a@" + "b" * 64 + ".com",
    "a@exa_mple.com",
    "a\u0007@example.com",
    "a\u200b@example.com",
    "a@exam\u200bple.com",
    "carla",
    "a@b@example.com",
]


@pytest.mark.parametrize("address", BAD_ADDRESSES)
async def test_bad_addresses_are_refused(
    http: httpx.AsyncClient, probes: Probes, address: str
) -> None:
    org = await bootstrap(http)

    response = await http.post(
        "/users", json={"email": address, "name": "Carla"}, headers=org.admin.auth
    )

    [(loc, kind)] = problem(response)
    assert loc == ("body", "email")
    assert kind in {"value_error", "control_character"}
    assert await probes.emails(to=address) == []


async def test_addresses_are_normalised_and_documented_as_email(http: httpx.AsyncClient) -> None:
    org = await bootstrap(http)

    created = await http.post(
        "/users", json={"email": "  Carla@ACME.example ", "name": "Carla"}, headers=org.admin.auth
    )
    spec = (await http.get("/openapi.json")).json()

    assert created.json()["user"]["email"] == "carla@acme.example"
    schemas = spec["components"]["schemas"]
    assert schemas["CreateUser"]["properties"]["email"]["format"] == "email"
    assert schemas["NewAdmin"]["properties"]["email"]["format"] == "email"


async def test_priority_is_set_by_staff_not_by_customers(
    http: httpx.AsyncClient, probes: Probes
) -> None:
    org = await bootstrap(http)
    agent = await add_user(http, org, "Arne", "agent")
    customer = await add_user(http, org, "Carla")

    asked = await http.post(
        "/tickets", json={"subject": "x", "priority": "urgent"}, headers=customer.auth
    )
    plain = await open_ticket(http, customer)
    explicit_normal = await open_ticket(http, customer, priority="normal")
    triaged = await open_ticket(http, agent, priority="urgent", customer_id=customer.id)

    assert asked.status_code == 403
    assert "priority" in asked.json()["detail"]
    assert plain["priority"] == explicit_normal["priority"] == "normal"
    assert triaged["priority"] == "urgent"
    assert len(await probes.events("ticket.created")) == 3


async def client_of(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


ORG = {"name": "Acme", "admin": {"email": "ada@acme.example", "name": "Ada"}}


async def test_outside_development_bootstrap_needs_the_operator_token(
    make_app: AppFactory, probes: Probes
) -> None:
    async with make_app() as app, await client_of(app) as http:
        anonymous = await http.post("/organizations", json=ORG)
        wrong = await http.post(
            "/organizations", json=ORG, headers={"Authorization": "Bearer guess"}
        )
        right = await http.post("/organizations", json=ORG, headers=OPERATOR)

    assert (anonymous.status_code, wrong.status_code, right.status_code) == (401, 401, 201)
    assert len(await probes.events("user.registered")) == 1


async def test_without_an_operator_token_bootstrap_is_off_outside_development(
    make_app: AppFactory,
) -> None:
    async with make_app(operator_token=None) as app, await client_of(app) as http:
        response = await http.post("/organizations", json=ORG, headers=OPERATOR)
    assert response.status_code in {404, 405}


async def test_in_development_bootstrap_needs_no_token(tickets_dsn: str, probes: Probes) -> None:
    settings = TicketsSettings(database_url=tickets_dsn, environment="development")
    app = create_app(settings)
    async with app.router.lifespan_context(app), await client_of(app) as http:
        response = await http.post("/organizations", json=ORG)
    assert response.status_code == 201


def test_a_placeholder_operator_token_stops_the_start(tickets_dsn: str) -> None:
    settings = TicketsSettings(
        database_url=tickets_dsn, environment="production", operator_token=SecretStr("changeme")
    )
    with pytest.raises(ConfigurationError, match="OPERATOR_TOKEN"):
        create_app(settings)


async def test_docs_load_their_assets_from_the_service(http: httpx.AsyncClient) -> None:
    page = await http.get("/docs")
    assert page.status_code == 200
    html = page.text
    assert "cdn" not in html and "https://" not in html and "http://" not in html
    scripts = [part.split('"')[0] for part in html.split('src="')[1:]]
    styles = [part.split('"')[0] for part in html.split('href="')[1:] if ".css" in part]
    assert scripts and styles
    for asset in scripts + styles:
        served = await http.get(asset)
        assert served.status_code == 200 and len(served.content) > 10_000, asset
