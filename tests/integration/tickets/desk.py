"""Helpers for the tickets API tests: set up organizations and users through the API, and read
back the jobs each write queued (event probes and the ``email`` queue)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI

from insightdesk.shared.queue import JobInfo, JobState, QueueClient
from insightdesk.tickets.handlers import flush_notifications
from insightdesk.tickets.notifications import FLUSH_QUEUE, FlushNotifications
from insightdesk.tickets.repository import TicketRepository
from insightdesk.tickets.subscribers import make_outbox

EVENTS = (
    "user.registered",
    "ticket.created",
    "ticket.message_added",
    "ticket.status_changed",
    "ticket.assigned",
    "ticket.priority_changed",
    "ticket.closed",
    "organization.created",
    "organization.updated",
    "sla_policy.changed",
    "business_calendar.changed",
)


OPERATOR_TOKEN = "operator-token-for-tests-only"  # a test value, not a secret
OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


def probe_queue(event: str) -> str:
    return f"probe.{event}"


@dataclass(frozen=True)
class Member:
    id: str
    email: str
    name: str
    role: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass(frozen=True)
class Org:
    id: str
    name: str
    admin: Member


class Probes:
    """Queues subscribed to every event the service publishes, plus the ``email`` queue."""

    def __init__(self, client: QueueClient) -> None:
        self.client = client

    async def install(self) -> None:
        for event in EVENTS:
            await self.client.create_queue(probe_queue(event))
            await self.client.subscribe(event, probe_queue(event))

    async def jobs(self, event: str) -> list[JobInfo]:
        return await self.client.find_jobs(probe_queue(event), limit=1000)

    async def events(self, event: str) -> list[dict[str, Any]]:
        return [job.data for job in await self.jobs(event)]

    async def email_jobs(self, template: str | None = None, to: str | None = None) -> list[JobInfo]:
        jobs = await self.client.find_jobs("email", limit=1000)
        return [
            j
            for j in jobs
            if (template is None or j.data["template"] == template)
            and (to is None or j.data["to"] == to)
        ]

    async def emails(
        self, template: str | None = None, to: str | None = None
    ) -> list[dict[str, Any]]:
        return [job.data for job in await self.email_jobs(template, to)]


async def bootstrap(http: httpx.AsyncClient, name: str = "Acme", admin: str = "Ada") -> Org:
    domain = name.lower().replace(" ", "-")
    response = await http.post(
        "/organizations",
        json={"name": name, "admin": {"email": f"{admin.lower()}@{domain}.example", "name": admin}},
        headers=OPERATOR,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    user = body["admin"]
    member = Member(user["id"], user["email"], user["name"], user["role"], body["api_token"])
    return Org(body["organization"]["id"], name, member)


async def add_user(http: httpx.AsyncClient, org: Org, name: str, role: str = "customer") -> Member:
    domain = org.name.lower().replace(" ", "-")
    response = await http.post(
        "/users",
        json={"email": f"{name.lower()}@{domain}.example", "name": name, "role": role},
        headers=org.admin.auth,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    user = body["user"]
    return Member(user["id"], user["email"], user["name"], user["role"], body["api_token"])


async def open_ticket(
    http: httpx.AsyncClient, by: Member, subject: str = "Printer on fire", **extra: Any
) -> dict[str, Any]:
    response = await http.post("/tickets", json={"subject": subject, **extra}, headers=by.auth)
    assert response.status_code == 201, response.text
    ticket: dict[str, Any] = response.json()
    return ticket


async def reply(
    http: httpx.AsyncClient, by: Member, ticket_id: str, body: str = "On it."
) -> dict[str, Any]:
    response = await http.post(
        f"/tickets/{ticket_id}/messages", json={"body": body}, headers=by.auth
    )
    assert response.status_code == 201, response.text
    message: dict[str, Any] = response.json()
    return message


async def put(
    http: httpx.AsyncClient, by: Member, ticket_id: str, what: str, body: dict[str, Any]
) -> httpx.Response:
    return await http.put(f"/tickets/{ticket_id}/{what}", json=body, headers=by.auth)


async def flush_now(app: FastAPI, client: QueueClient) -> int:
    """Close every notification window now: run each queued ``ticket-notifications`` job's
    handler (what the subscriber does when the window ends). Returns the updates mailed."""
    runtime = app.state.runtime
    mailed = 0
    for job in await client.find_jobs(FLUSH_QUEUE, limit=1000):
        if job.state is not JobState.CREATED:
            continue
        command = FlushNotifications.model_validate(job.data)
        async with runtime.sessions() as session:
            mailed += await flush_notifications(
                command,
                repo=TicketRepository(session),
                outbox=make_outbox(runtime.broker, session, runtime.settings),
            )
            await session.commit()
    return mailed
