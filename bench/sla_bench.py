"""SLA benchmarks (issue 9): business-time primitives, recomputing open clocks after a calendar
edit, and deadline precision.

    uv run python bench/sla_bench.py [--dsn postgresql://postgres@127.0.0.1:5432/postgres]
        [--clocks 10000] [--deadlines 1000] [--spread 60] [--out bench/results-sla.json]

1. ``due_at`` / ``business_minutes`` in µs per call on an office calendar (Europe/Berlin,
   Mon-Fri 09-12 + 13-17, German and Bavarian public holidays), against a 24x7 calendar as the
   baseline; rounds alternate.
2. ``--clocks`` open tickets (first response + resolution clocks each, with their jobs) on that
   calendar; a calendar edit re-deadlines all of them in one transaction: wall time and jobs
   rewritten, alternating two edits (shorter / longer days).
3. ``--deadlines`` first-response deadlines spread evenly over ``--spread`` seconds, settled by
   the real SLA service (``sla-check`` jobs at ``start_after``, breach recorded): breach time
   minus due time, p50/p99; the baseline is as many bare engine jobs with ``start_after`` in the
   same minute, on their own queue (fire time minus ``start_after``).

Prints tables and writes JSON. Creates and drops its own database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import conninfo, sql
from psycopg_pool import AsyncConnectionPool

from insightdesk.shared.contracts import (
    BusinessCalendarChanged,
    BusinessCalendarConfig,
    Role,
    SlaPolicyChanged,
    SlaPolicyConfig,
    TicketPriority,
    TicketSnapshot,
    TicketStatus,
    UserRef,
)
from insightdesk.shared.queue import Job, JobOptions, NewJob, QueueClient, make_pool
from insightdesk.shared.queue.broker import PgBroker
from insightdesk.sla import handlers
from insightdesk.sla.__main__ import migrate
from insightdesk.sla.app import build_broker
from insightdesk.sla.business_time import BusinessCalendar, always_open
from insightdesk.sla.calendars import build_calendar
from insightdesk.sla.clocks import Check
from insightdesk.sla.settings import SlaSettings
from insightdesk.sla.store import PgOutbox, PgUnit, PgUnitFactory
from insightdesk.sla.tracking import PolicyRecord, TicketState, choose_policy, reconcile

WEEK = ("monday", "tuesday", "wednesday", "thursday", "friday")
ORG = uuid.UUID(int=9)
CUSTOMER = UserRef(id=uuid.UUID(int=10), email="c@example.com", name="C", role=Role.CUSTOMER)


def office(morning_end: str = "12:00", evening_end: str = "17:00") -> BusinessCalendarConfig:
    return BusinessCalendarConfig.model_validate(
        {
            "name": "office",
            "time_zone": "Europe/Berlin",
            "hours": {
                d: [{"start": "09:00", "end": morning_end}, {"start": "13:00", "end": evening_end}]
                for d in WEEK
            },
            "holiday_country": "DE",
            "holiday_subdivision": "BY",
        }
    )


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


# ---------------------------------------------------------------------- 1. primitives


def primitives(rounds: int = 5, calls: int = 4000) -> dict[str, Any]:
    rng = random.Random(7)
    starts = [
        datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(365 * 86400))
        for _ in range(calls)
    ]
    minutes = [rng.choice((60, 480, 2400)) for _ in range(calls)]
    spans = [timedelta(hours=rng.choice((4, 30, 100))) for _ in range(calls)]
    calendars: dict[str, BusinessCalendar] = {
        "24x7 (baseline)": always_open("Europe/Berlin"),
        "office + holidays": build_calendar(office()),
    }
    results: dict[str, dict[str, list[float]]] = {
        name: {"due_at": [], "business_minutes": []} for name in calendars
    }
    for _ in range(rounds):
        for name, cal in calendars.items():  # alternate baseline and variant every round
            t0 = time.perf_counter()
            for s, m in zip(starts, minutes, strict=True):
                cal.due_at(s, m)
            results[name]["due_at"].append((time.perf_counter() - t0) / calls * 1e6)
            t0 = time.perf_counter()
            for s, d in zip(starts, spans, strict=True):
                cal.business_minutes(s, s + d)
            results[name]["business_minutes"].append((time.perf_counter() - t0) / calls * 1e6)
    table = {
        name: {op: statistics.median(v) for op, v in ops.items()} for name, ops in results.items()
    }
    print("\n1. business-time primitives, µs per call (median of rounds)")
    print(f"{'calendar':<22}{'due_at':>10}{'business_minutes':>18}")
    for name, ops in table.items():
        print(f"{name:<22}{ops['due_at']:>10.1f}{ops['business_minutes']:>18.1f}")
    base, var = table["24x7 (baseline)"], table["office + holidays"]
    print(
        f"{'ratio office/24x7':<22}{var['due_at'] / base['due_at']:>10.2f}"
        f"{var['business_minutes'] / base['business_minutes']:>18.2f}"
    )
    return {"us_per_call": table, "rounds": results, "calls": calls}


# ---------------------------------------------------------------------- database


@asynccontextmanager
async def scratch_database(server_dsn: str) -> AsyncIterator[str]:
    name = f"sla_bench_{uuid.uuid4().hex[:8]}"
    async with await psycopg.AsyncConnection.connect(server_dsn, autocommit=True) as admin:
        await admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    params = conninfo.conninfo_to_dict(server_dsn)
    params["dbname"] = name
    dsn = conninfo.make_conninfo("", **params)
    try:
        yield dsn
    finally:
        async with await psycopg.AsyncConnection.connect(server_dsn, autocommit=True) as admin:
            await admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


class CountingOutbox(PgOutbox):
    written = 0

    async def schedule(self, checks: Sequence[Check]) -> int:
        n = await super().schedule(checks)
        CountingOutbox.written += n
        return n


class CountingUnits(PgUnitFactory):
    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[PgUnit]:
        async with super().__call__() as unit:
            yield PgUnit(unit.store, CountingOutbox(self.broker, unit.store.conn))


def snapshot(ticket_id: uuid.UUID, created: datetime) -> TicketSnapshot:
    return TicketSnapshot(
        id=ticket_id,
        organization_id=ORG,
        subject="bench",
        status=TicketStatus.OPEN,
        priority=TicketPriority.NORMAL,
        customer=CUSTOMER,
        created_at=created,
    )


def policy_config(calendar_id: uuid.UUID | None, first: int, resolution: int) -> SlaPolicyConfig:
    return SlaPolicyConfig.model_validate(
        {
            "name": "bench",
            "is_default": True,
            "calendar_id": str(calendar_id) if calendar_id else None,
            "targets": [
                {
                    "priority": "normal",
                    "first_response": {"minutes": first},
                    "resolution": {"minutes": resolution},
                }
            ],
        }
    )


async def recompute(dsn: str, clocks: int, rounds: int = 4) -> dict[str, Any]:
    pool = make_pool(dsn, min_size=1, max_size=4)
    await pool.open(wait=True)
    broker = PgBroker(dsn, logger=None, min_size=1, max_size=2)
    await broker.connect()
    units = CountingUnits(pool, broker)
    calendars = handlers.CalendarCache()
    cid, pid = uuid.uuid4(), uuid.uuid4()
    now = datetime.now(UTC)

    async with units() as unit:
        await handlers.on_calendar_changed(
            BusinessCalendarChanged(
                occurred_at=now, organization_id=ORG, calendar_id=cid, version=1, calendar=office()
            ),
            unit=unit,
            calendars=calendars,
        )
        await handlers.on_policy_changed(
            SlaPolicyChanged(
                occurred_at=now,
                organization_id=ORG,
                policy_id=pid,
                version=1,
                policy=policy_config(cid, 240, 2400),
            ),
            unit=unit,
            calendars=calendars,
        )
    # open tickets, their clocks and jobs, written in bulk (the domain computes them)
    record = PolicyRecord(pid, ORG, 1, policy_config(cid, 240, 2400))
    lookup = await _lookup(units, calendars, cid)
    t0 = time.perf_counter()
    for chunk in range(0, clocks, 1000):
        tickets, all_clocks, checks = [], [], []
        for i in range(chunk, min(clocks, chunk + 1000)):
            created = now - timedelta(minutes=i % 600)
            ticket = TicketState.from_snapshot(snapshot(uuid.uuid4(), created), created)
            chosen = choose_policy([record], ticket.priority, ticket.customer_id)
            ticket_clocks: list[Any] = []
            result = reconcile(ticket, ticket_clocks, policy=chosen, calendars=lookup, at=created)
            ticket.policy_id = pid
            tickets.append(ticket)
            all_clocks += ticket_clocks
            checks += result.checks
        async with units() as unit:
            for ticket in tickets:
                await unit.store.ensure_ticket(ticket)
            await unit.store.save_clocks(all_clocks)
            await unit.outbox.schedule(checks)
    setup = time.perf_counter() - t0
    print(f"\n2. {clocks:,} open tickets ({2 * clocks:,} clocks) set up in {setup:.1f} s")
    runs: list[dict[str, Any]] = []
    edits = [("shorter days", office("11:00", "16:00")), ("longer days", office("12:00", "18:00"))]
    for r in range(rounds):
        label, config = edits[r % 2]
        CountingOutbox.written = 0
        t0 = time.perf_counter()
        async with units() as unit:
            tickets_done = await handlers.on_calendar_changed(
                BusinessCalendarChanged(
                    occurred_at=datetime.now(UTC),
                    organization_id=ORG,
                    calendar_id=cid,
                    version=r + 2,
                    calendar=config,
                ),
                unit=unit,
                calendars=calendars,
            )
        wall = time.perf_counter() - t0
        runs.append(
            {
                "edit": label,
                "seconds": wall,
                "tickets": tickets_done,
                "jobs": CountingOutbox.written,
            }
        )
    print(f"{'edit':<14}{'wall s':>8}{'tickets':>9}{'jobs rewritten':>16}{'ms/ticket':>11}")
    for run in runs:
        per = run["seconds"] / max(1, run["tickets"]) * 1000
        print(
            f"{run['edit']:<14}{run['seconds']:>8.2f}{run['tickets']:>9,}{run['jobs']:>16,}"
            f"{per:>11.2f}"
        )
    await broker.stop()
    await pool.close()
    return {"setup_seconds": setup, "runs": runs, "clocks": 2 * clocks, "tickets": clocks}


async def _lookup(units: PgUnitFactory, calendars: handlers.CalendarCache, cid: uuid.UUID) -> Any:
    async with units() as unit:
        return await calendars.lookup(unit, [cid])


# ---------------------------------------------------------------------- 3. precision


async def precision(dsn: str, deadlines: int, spread: float, lead: float = 30.0) -> dict[str, Any]:
    """Tickets (and their deadline jobs) are written in bulk before the service starts, with
    the first deadline ``lead`` seconds ahead, so a slow machine cannot make them late."""
    pool: AsyncConnectionPool[Any] = make_pool(dsn, min_size=1, max_size=6)
    await pool.open(wait=True)
    settings = SlaSettings(database_url=dsn, environment="test", check_concurrency=20)
    service, calendars = build_broker(settings, units=lambda b: PgUnitFactory(pool, b))
    publisher = PgBroker(dsn, logger=None, min_size=1, max_size=2)
    await publisher.connect()
    units = PgUnitFactory(pool, publisher)
    now = datetime.now(UTC)
    pid = uuid.uuid4()
    config = policy_config(None, 60, 6000)
    async with units() as unit:
        await handlers.on_policy_changed(
            SlaPolicyChanged(
                occurred_at=now, organization_id=ORG, policy_id=pid, version=1, policy=config
            ),
            unit=unit,
            calendars=calendars,
        )
    first_due = now + timedelta(seconds=lead)
    dues = [first_due + timedelta(seconds=spread * i / deadlines) for i in range(deadlines)]
    record = PolicyRecord(pid, ORG, 1, config)
    lookup = await _lookup(units, calendars, uuid.uuid4())
    tickets, all_clocks, checks = [], [], []
    for due in dues:
        created = due - timedelta(minutes=60)
        ticket = TicketState.from_snapshot(snapshot(uuid.uuid4(), created), created)
        ticket_clocks: list[Any] = []
        result = reconcile(ticket, ticket_clocks, policy=record, calendars=lookup, at=created)
        ticket.policy_id = pid
        tickets.append(ticket)
        all_clocks += ticket_clocks
        checks += result.checks
    async with units() as unit:
        for ticket in tickets:
            await unit.store.ensure_ticket(ticket)
        await unit.store.save_clocks(all_clocks)
        await unit.outbox.schedule(checks)
    # baseline: bare engine jobs with start_after in the same minute, on their own queue
    client = QueueClient(make_pool(dsn, min_size=1, max_size=3), dsn=dsn)
    await client.pool.open(wait=True)
    await client.create_queue("bench-delayed")
    await client.send_many(
        "bench-delayed",
        [NewJob({"due": d.isoformat()}, JobOptions(start_after=d)) for d in dues],
    )
    written = datetime.now(UTC)
    fired: list[float] = []

    async def on_delayed(job: Job) -> None:
        fired.append((datetime.now(UTC) - datetime.fromisoformat(job.data["due"])).total_seconds())

    worker = await client.work("bench-delayed", on_delayed, concurrency=20)
    await service.start()
    print(
        f"\n3. {deadlines:,} deadlines over {spread:.0f} s; written "
        f"{(written - now).total_seconds():.1f} s after start (first due at {lead:.0f} s)"
    )
    end = dues[-1] + timedelta(seconds=15)
    while datetime.now(UTC) < end:
        async with pool.connection() as conn:
            row = await (await conn.execute("SELECT count(*) FROM sla.breaches")).fetchone()
        if row and row[0] >= deadlines and len(fired) >= deadlines:
            break
        await asyncio.sleep(0.5)
    async with pool.connection() as conn:
        rows = await (
            await conn.execute("SELECT extract(epoch FROM breached_at - due_at) FROM sla.breaches")
        ).fetchall()
    late = [float(r[0]) * 1000 for r in rows]
    base = [f * 1000 for f in fired]
    await worker.stop()
    await client.close()
    await service.stop()
    await publisher.stop()
    await client.pool.close()
    await pool.close()
    table = {"bare engine job (baseline)": base, "SLA deadline -> breach": late}
    print(f"{'path':<28}{'n':>6}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'min ms':>9}")
    summary = {}
    for name, values in table.items():
        if not values:
            print(f"{name:<28}{0:>6}")
            continue
        summary[name] = {
            "n": len(values),
            "p50_ms": pct(values, 50),
            "p99_ms": pct(values, 99),
            "max_ms": max(values),
            "min_ms": min(values),
        }
        s = summary[name]
        print(
            f"{name:<28}{s['n']:>6}{s['p50_ms']:>9.1f}{s['p99_ms']:>9.1f}"
            f"{s['max_ms']:>9.1f}{s['min_ms']:>9.1f}"
        )
    return summary


async def run(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"when": datetime.now(UTC).isoformat()}
    if args.only in (None, "primitives"):
        out["primitives"] = primitives()
    if args.only in (None, "recompute"):
        async with scratch_database(args.dsn) as dsn:
            await migrate(SlaSettings(database_url=dsn, environment="test"))
            out["recompute"] = await recompute(dsn, args.clocks, args.rounds)
    if args.only not in (None, "precision"):
        return out
    async with scratch_database(args.dsn) as dsn:
        await migrate(SlaSettings(database_url=dsn, environment="test"))
        out["precision"] = await precision(dsn, args.deadlines, args.spread)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--clocks", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2, help="calendar edits timed")
    parser.add_argument("--deadlines", type=int, default=1_000)
    parser.add_argument("--spread", type=float, default=60.0)
    parser.add_argument("--only", choices=("primitives", "recompute", "precision"))
    parser.add_argument("--out", type=Path, default=Path("bench/results-sla.json"))
    args = parser.parse_args()
    result = asyncio.run(run(args))
    args.out.write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    print(f"\nJSON: {args.out}")


if __name__ == "__main__":
    main()
