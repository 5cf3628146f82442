"""A seeded organization: tickets with a whole lifecycle, written as facts in bulk (COPY),
and the raw rows kept so a test can compute every figure again by brute force."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

AGENTS = 8


@dataclass
class Seed:
    organization_id: uuid.UUID
    time_zone: str
    agents: list[tuple[uuid.UUID, str]]
    tickets: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    sla: list[dict[str, Any]] = field(default_factory=list)


def make_seed(
    n: int, *, now: datetime, days: int = 16, time_zone: str = "Europe/Berlin", seed: int = 7
) -> Seed:
    rng = random.Random(seed)
    org = uuid.UUID(int=rng.getrandbits(128))
    agents = [(uuid.UUID(int=rng.getrandbits(128)), f"Agent {i:02d}") for i in range(AGENTS)]
    out = Seed(org, time_zone, agents)
    horizon = days * 86400
    for i in range(n):
        tid = uuid.UUID(int=rng.getrandbits(128))
        created = now - timedelta(seconds=rng.randrange(60, horizon))
        assignee = rng.choice([*agents, None])
        ticket: dict[str, Any] = {
            "id": tid,
            "organization_id": org,
            "subject": f"Ticket {i}" if i % 97 else f'=HYPERLINK("x") {i}',
            "status": "open",
            "priority": rng.choice(["low", "normal", "high", "urgent"]),
            "customer_id": uuid.UUID(int=rng.getrandbits(128)),
            "customer_email": f"c{i}@example.com",
            "customer_name": f"Customer {i}",
            "assignee_id": assignee[0] if assignee else None,
            "assignee_name": assignee[1] if assignee else None,
            "created_at": created,
            "first_response_at": None,
            "resolved_at": None,
            "closed_at": None,
            "updated_at": created,
        }
        events: list[tuple[str, datetime, uuid.UUID | None, str | None, str | None, str]] = [
            ("created", created, None, None, "open", "customer")
        ]
        t = created
        if rng.random() < 0.8:
            t = t + timedelta(minutes=rng.expovariate(1 / 90))
            if t < now:
                ticket["first_response_at"] = t
                agent = assignee or rng.choice(agents)
                events.append(("replied", t, agent[0], None, "first_response", "agent"))
                for _ in range(rng.randrange(0, 3)):
                    t = t + timedelta(minutes=rng.expovariate(1 / 120))
                    if t < now:
                        events.append(("replied", t, agent[0], None, None, "agent"))
                if rng.random() < 0.3:
                    t = t + timedelta(minutes=rng.randrange(1, 600))
                    if t < now:
                        ticket["status"] = "pending"
                        events.append(("status_changed", t, agent[0], "open", "pending", "agent"))
                if rng.random() < 0.6:
                    t = t + timedelta(minutes=rng.expovariate(1 / 1500))
                    if t < now:
                        events.append(
                            ("status_changed", t, agent[0], ticket["status"], "resolved", "agent")
                        )
                        ticket["status"] = "resolved"
                        ticket["resolved_at"] = t
                        if rng.random() < 0.1:
                            t = t + timedelta(minutes=rng.randrange(1, 2000))
                            if t < now:
                                events.append(
                                    ("status_changed", t, None, "resolved", "open", "customer")
                                )
                                ticket["status"] = "open"
                                ticket["resolved_at"] = None
                        elif rng.random() < 0.5:
                            t = t + timedelta(minutes=rng.randrange(1, 3000))
                            if t < now:
                                events.append(
                                    ("status_changed", t, agent[0], "resolved", "closed", "agent")
                                )
                                ticket["status"] = "closed"
                                ticket["closed_at"] = t
        ticket["updated_at"] = t if t < now else ticket["updated_at"]
        out.tickets.append(ticket)
        for kind, at, actor, old, new, role in events:
            out.events.append(
                {
                    "event_key": uuid.UUID(int=rng.getrandbits(128)).hex,
                    "ticket_id": tid,
                    "organization_id": org,
                    "kind": kind,
                    "occurred_at": at,
                    "actor_id": actor,
                    "actor_role": role,
                    "old_value": old,
                    "new_value": new,
                }
            )
        if rng.random() < 0.5:
            due = created + timedelta(hours=rng.choice([1, 4, 8]))
            breached = (
                due
                if (ticket["first_response_at"] or now + timedelta(days=99)) > due and due < now
                else None
            )
            out.sla.append(
                {
                    "ticket_id": tid,
                    "target": "first_response",
                    "organization_id": org,
                    "due_at": due,
                    "warned_at": None,
                    "breached_at": breached,
                    "met_at": None,
                }
            )
    return out


async def load_seed(conn: psycopg.AsyncConnection[Any], seed: Seed, name: str = "Acme") -> None:
    """Write the seed's facts with COPY (what the events would have built)."""
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO reports.organizations (id, name, time_zone, locale, updated_at) "
            "VALUES (%s, %s, %s, 'en', now())",
            (seed.organization_id, name, seed.time_zone),
        )
        async with conn.cursor().copy(
            "COPY reports.users (id, organization_id, email, name, role, updated_at) FROM STDIN"
        ) as copy:
            for i, (aid, aname) in enumerate(seed.agents):
                await copy.write_row(
                    (
                        aid,
                        seed.organization_id,
                        f"agent{i}@example.com",
                        aname,
                        "agent",
                        datetime(2020, 1, 1, tzinfo=UTC),
                    )
                )
        columns = list(seed.tickets[0])
        async with conn.cursor().copy(
            f"COPY reports.tickets ({', '.join(columns)}) FROM STDIN"  # fixed column names
        ) as copy:
            for t in seed.tickets:
                await copy.write_row([t[c] for c in columns])
        async with conn.cursor().copy(
            "COPY reports.processed_events (event_key, event_name, occurred_at) FROM STDIN"
        ) as copy:
            for e in seed.events:
                await copy.write_row((e["event_key"], "ticket." + e["kind"], e["occurred_at"]))
        ecols = list(seed.events[0])
        async with conn.cursor().copy(
            f"COPY reports.ticket_events ({', '.join(ecols)}) FROM STDIN"
        ) as copy:
            for e in seed.events:
                await copy.write_row([e[c] for c in ecols])
        if seed.sla:
            scols = list(seed.sla[0])
            async with conn.cursor().copy(
                f"COPY reports.sla_outcomes ({', '.join(scols)}) FROM STDIN"
            ) as copy:
                for s in seed.sla:
                    await copy.write_row([s[c] for c in scols])
        await conn.execute("ANALYZE reports.tickets")
        await conn.execute("ANALYZE reports.ticket_events")
