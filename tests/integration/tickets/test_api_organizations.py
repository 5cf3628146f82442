"""Organization settings: read and change them (admins only), validation, and the events that
carry them to the other services."""

from __future__ import annotations

import httpx

from .desk import Probes, add_user, bootstrap


async def test_an_organization_starts_with_default_settings_and_announces_them(
    http: httpx.AsyncClient, probes: Probes
) -> None:
    org = await bootstrap(http)

    response = await http.get("/organizations/me", headers=org.admin.auth)

    assert response.status_code == 200
    body = response.json()
    assert (body["time_zone"], body["locale"], body["auto_close_after_days"]) == ("UTC", "en", 7)
    [created] = await probes.events("organization.created")
    assert created["organization"]["id"] == org.id
    assert created["organization"]["auto_close_after_days"] == 7


async def test_an_admin_changes_the_settings_and_organization_updated_carries_them(
    http: httpx.AsyncClient, probes: Probes
) -> None:
    org = await bootstrap(http)

    response = await http.patch(
        "/organizations/me",
        json={"time_zone": "Europe/Berlin", "locale": "de", "auto_close_after_days": 0},
        headers=org.admin.auth,
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["time_zone"], body["locale"], body["auto_close_after_days"]) == (
        "Europe/Berlin",
        "de",
        0,
    )
    assert (await http.get("/organizations/me", headers=org.admin.auth)).json() == body
    [updated] = await probes.events("organization.updated")
    assert updated["organization"]["time_zone"] == "Europe/Berlin"
    assert updated["organization"]["auto_close_after_days"] == 0
    assert sorted(updated["changed"]) == ["auto_close_after_days", "locale", "time_zone"]

    same = await http.patch("/organizations/me", json={"locale": "de"}, headers=org.admin.auth)
    assert same.status_code == 200
    assert len(await probes.events("organization.updated")) == 1  # nothing changed, no event


async def test_bad_settings_are_422_and_change_nothing(
    http: httpx.AsyncClient, probes: Probes
) -> None:
    org = await bootstrap(http)
    for body in (
        {"time_zone": "Mars/Olympus_Mons"},
        {"auto_close_after_days": -1},
        {"locale": "english"},
        {"colour": "blue"},
    ):
        response = await http.patch("/organizations/me", json=body, headers=org.admin.auth)
        assert response.status_code == 422, body
    bad_zone = await http.patch(
        "/organizations/me", json={"time_zone": "Mars/Olympus_Mons"}, headers=org.admin.auth
    )
    assert "Mars/Olympus_Mons" in bad_zone.text
    settings = (await http.get("/organizations/me", headers=org.admin.auth)).json()
    assert (settings["time_zone"], settings["locale"], settings["auto_close_after_days"]) == (
        "UTC",
        "en",
        7,
    )
    assert await probes.events("organization.updated") == []


async def test_only_admins_read_or_change_the_settings(
    http: httpx.AsyncClient, probes: Probes
) -> None:
    org = await bootstrap(http)
    agent = await add_user(http, org, "Arne", "agent")
    customer = await add_user(http, org, "Cleo")

    for member in (agent, customer):
        assert (await http.get("/organizations/me", headers=member.auth)).status_code == 403
        denied = await http.patch(
            "/organizations/me", json={"auto_close_after_days": 1}, headers=member.auth
        )
        assert denied.status_code == 403
    assert (await http.get("/organizations/me")).status_code == 401
    assert await probes.events("organization.updated") == []
