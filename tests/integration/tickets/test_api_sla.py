"""SLA configuration through the tickets API, and what tickets does with the SLA service's
events (reported targets, filters, alert mails)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from insightdesk.shared.contracts import (
    ClockState,
    SlaBreached,
    SlaClockChanged,
    SlaTargetKind,
    SlaWarning,
    TicketSlaTarget,
)
from insightdesk.tickets.outbox import BrokerOutbox
from insightdesk.tickets.repository import TicketRepository
from insightdesk.tickets.sla_events import on_clock_changed, on_sla_alert
from insightdesk.tickets.sla_repository import SlaRepository

from .desk import Org, Probes, add_user, bootstrap, open_ticket, put

WEEK = ["monday", "tuesday", "wednesday", "thursday", "friday"]


def calendar(**extra: Any) -> dict[str, Any]:
    return {
        "name": "Office",
        "time_zone": "Europe/Berlin",
        "hours": {d: [{"start": "09:00", "end": "17:00"}] for d in WEEK},
        "holiday_country": "DE",
        "holiday_subdivision": "BY",
        **extra,
    }


def policy(**extra: Any) -> dict[str, Any]:
    return {
        "name": "Standard",
        "is_default": True,
        "targets": [{"priority": "normal", "first_response": {"minutes": 60}}],
        **extra,
    }


@pytest.fixture
async def org(http: httpx.AsyncClient) -> Org:
    return await bootstrap(http)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        (
            {
                "hours": {
                    "monday": [
                        {"start": "09:00", "end": "12:00"},
                        {"start": "11:00", "end": "13:00"},
                    ]
                }
            },
            "hours",
        ),
        (
            {
                "hours": {
                    "sunday": [{"start": "22:00", "end": "06:00"}],
                    "monday": [{"start": "05:00", "end": "09:00"}],
                }
            },
            "hours",
        ),
        ({"hours": {"monday": [{"start": "9am", "end": "17:00"}]}}, "hours"),
        ({"holiday_country": "XX"}, "holiday_country"),
        ({"holiday_subdivision": "ZZ"}, "holiday_subdivision"),
    ],
)
async def test_a_bad_calendar_is_422_naming_the_field_and_publishes_nothing(
    http: httpx.AsyncClient, org: Org, probes: Probes, change: dict[str, Any], field: str
) -> None:
    response = await http.post("/sla/calendars", json=calendar(**change), headers=org.admin.auth)
    assert response.status_code == 422, response.text
    assert field in response.json()["detail"][0]["loc"]
    assert await probes.events("business_calendar.changed") == []
    assert (await http.get("/sla/calendars", headers=org.admin.auth)).json() == []


async def test_calendars_are_created_changed_and_deleted_with_versioned_events(
    http: httpx.AsyncClient, org: Org, probes: Probes
) -> None:
    created = await http.post("/sla/calendars", json=calendar(), headers=org.admin.auth)
    assert created.status_code == 201, created.text
    cid = created.json()["id"]
    night = calendar(hours={"friday": [{"start": "22:00", "end": "06:00"}]})
    changed = await http.put(f"/sla/calendars/{cid}", json=night, headers=org.admin.auth)
    assert changed.status_code == 200 and changed.json()["version"] == 2
    assert (await http.delete(f"/sla/calendars/{cid}", headers=org.admin.auth)).status_code == 204
    events = await probes.events("business_calendar.changed")
    assert [(e["calendar_id"], e["version"], e["calendar"] is None) for e in events] == [
        (cid, 1, False),
        (cid, 2, False),
        (cid, 3, True),
    ]
    assert events[1]["calendar"]["hours"]["friday"] == [
        {"start": "22:00", "end": "06:00", "schema_version": 1}
    ]
    assert (await http.get(f"/sla/calendars/{cid}", headers=org.admin.auth)).status_code == 404


async def test_only_admins_configure_and_staff_read(
    http: httpx.AsyncClient, org: Org, probes: Probes
) -> None:
    agent = await add_user(http, org, "Bob", "agent")
    customer = await add_user(http, org, "Cleo", "customer")
    assert (await http.post("/sla/policies", json=policy(), headers=agent.auth)).status_code == 403
    assert (await http.get("/sla/policies", headers=customer.auth)).status_code == 403
    assert (await http.get("/sla/policies", headers=agent.auth)).json() == []
    assert await probes.events("sla_policy.changed") == []


async def test_policies_validate_their_calendar_default_and_ladder(
    http: httpx.AsyncClient, org: Org, probes: Probes
) -> None:
    other = await bootstrap(http, "Globex", "Gus")
    foreign = (await http.post("/sla/calendars", json=calendar(), headers=other.admin.auth)).json()
    wrong = await http.post(
        "/sla/policies", json=policy(calendar_id=foreign["id"]), headers=org.admin.auth
    )
    assert wrong.status_code == 422 and "calendar_id" in wrong.json()["detail"][0]["loc"]
    ladder = [{"after_minutes": m} for m in (10, 20, 30, 40, 50)]
    too_long = await http.post(
        "/sla/policies", json=policy(escalation=ladder), headers=org.admin.auth
    )
    assert too_long.status_code == 422 and "escalation" in too_long.json()["detail"][0]["loc"]
    cal = (await http.post("/sla/calendars", json=calendar(), headers=org.admin.auth)).json()
    first = await http.post(
        "/sla/policies", json=policy(calendar_id=cal["id"]), headers=org.admin.auth
    )
    assert first.status_code == 201, first.text
    second = await http.post("/sla/policies", json=policy(name="Other"), headers=org.admin.auth)
    assert second.status_code == 409
    in_use = await http.delete(f"/sla/calendars/{cal['id']}", headers=org.admin.auth)
    assert in_use.status_code == 409
    vip = policy(
        name="VIP",
        is_default=False,
        position=1,
        conditions={"priorities": ["urgent"]},
        pause_statuses=["pending", "resolved"],
        warning={"percent_elapsed": None, "minutes_before": 15},
    )
    created = await http.post("/sla/policies", json=vip, headers=org.admin.auth)
    assert created.status_code == 201, created.text
    listed = (await http.get("/sla/policies", headers=org.admin.auth)).json()
    assert [p["policy"]["name"] for p in listed] == ["Standard", "VIP"]
    events = await probes.events("sla_policy.changed")
    assert [e["policy"]["name"] for e in events] == ["Standard", "VIP"]
    assert all(e["organization_id"] == org.id for e in events)


@pytest.fixture
async def sessions(app: FastAPI) -> Any:
    return app.state.runtime.sessions


@pytest.fixture
async def outbox_broker(app: FastAPI) -> Any:
    return app.state.runtime.broker


def _targets(breached: bool, warned: bool) -> list[TicketSlaTarget]:
    return [
        TicketSlaTarget(
            target=SlaTargetKind.FIRST_RESPONSE,
            state=ClockState.RUNNING,
            due_at=datetime(2026, 3, 2, 10, tzinfo=UTC),
            remaining_minutes=-5.0 if breached else 12.5,
            warned=warned,
            breached=breached,
        )
    ]


async def test_reported_targets_show_on_tickets_and_filter_them(
    http: httpx.AsyncClient, org: Org, sessions: Any
) -> None:
    cleo = await add_user(http, org, "Cleo", "customer")
    late = await open_ticket(http, cleo, "Late")
    risky = await open_ticket(http, cleo, "Risky")
    fine = await open_ticket(http, cleo, "Fine")

    async def report(
        ticket: dict[str, Any], sequence: int, *, breached: bool, warned: bool
    ) -> bool:
        event = SlaClockChanged(
            occurred_at=datetime.now(UTC),
            ticket_id=uuid.UUID(ticket["id"]),
            organization_id=uuid.UUID(org.id),
            sequence=sequence,
            targets=_targets(breached, warned),
        )
        async with sessions() as session:
            stored = await on_clock_changed(event, sla=SlaRepository(session))
            await session.commit()
        return stored

    assert await report(late, 2, breached=True, warned=True)
    assert not await report(late, 1, breached=False, warned=False)  # older report: ignored
    assert await report(risky, 1, breached=False, warned=True)
    assert await report(fine, 1, breached=False, warned=False)

    def ids(response: httpx.Response) -> set[str]:
        return {t["id"] for t in response.json()["items"]}

    auth = org.admin.auth
    assert ids(await http.get("/tickets", params={"sla": "breached"}, headers=auth)) == {late["id"]}
    assert ids(await http.get("/tickets", params={"sla": "at_risk"}, headers=auth)) == {risky["id"]}
    assert (await http.get("/tickets", params={"sla": "late"}, headers=auth)).status_code == 422
    detail = (await http.get(f"/tickets/{risky['id']}", headers=auth)).json()
    assert detail["sla"]["at_risk"] is True
    assert detail["sla"]["targets"][0]["remaining_minutes"] == 12.5


async def test_alerts_mail_the_assignee_or_every_agent_and_the_admins_once_per_level(
    http: httpx.AsyncClient, org: Org, probes: Probes, sessions: Any, outbox_broker: Any
) -> None:
    bob = await add_user(http, org, "Bob", "agent")
    carl = await add_user(http, org, "Carl", "agent")
    cleo = await add_user(http, org, "Cleo", "customer")
    mine = await open_ticket(http, cleo, "Mine")
    nobody = await open_ticket(http, cleo, "Nobody's")
    assert (
        await put(http, org.admin, mine["id"], "assignee", {"assignee_id": bob.id})
    ).status_code == 200
    due = datetime.now(UTC) - timedelta(minutes=1)

    async def deliver(event: SlaWarning | SlaBreached) -> int:
        async with sessions() as session:
            sent = await on_sla_alert(
                event,
                tickets=TicketRepository(session),
                sla=SlaRepository(session),
                outbox=BrokerOutbox(outbox_broker, session),
            )
            await session.commit()
        return sent

    def breached(
        ticket: dict[str, Any], level: int = 0, notify: list[str] | None = None
    ) -> SlaBreached:
        return SlaBreached(
            occurred_at=datetime.now(UTC),
            ticket_id=uuid.UUID(ticket["id"]),
            organization_id=uuid.UUID(org.id),
            target="first_response",
            due_at=due,
            deadline_version=3,
            escalation_level=level,
            notify=notify or ["assignee", "admins"],
        )

    assert await deliver(breached(mine)) == 2
    assert await deliver(breached(nobody)) == 3
    warning = SlaWarning(
        occurred_at=datetime.now(UTC),
        ticket_id=uuid.UUID(mine["id"]),
        organization_id=uuid.UUID(org.id),
        target="resolution",
        due_at=due,
        remaining_minutes=30.0,
    )
    assert await deliver(warning) == 2
    level_one = breached(mine, 1, ["admins"])
    assert await deliver(level_one) == 1
    assert await deliver(level_one) == 1  # a duplicate delivery: same idempotency key

    mails = await probes.emails("sla-breached")
    to = sorted((m["context"]["ticket_id"] == mine["id"], m["to"]) for m in mails)
    assert to == sorted(
        [
            (True, bob.email),
            (True, org.admin.email),
            (False, bob.email),
            (False, carl.email),
            (False, org.admin.email),
            (True, org.admin.email),
            (True, org.admin.email),
        ]
    )
    keys = [m["idempotency_key"] for m in mails]
    assert len(set(keys)) == len(keys) - 1  # only the duplicate delivery repeats a key
    level_keys = [
        m["idempotency_key"] for m in mails if m["context"].get("escalation_level") == "1"
    ]
    assert len(level_keys) == 2 and len(set(level_keys)) == 1
    assert sorted(m["to"] for m in await probes.emails("sla-warning")) == sorted(
        [bob.email, org.admin.email]
    )
