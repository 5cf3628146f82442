"""Auto-close at scale: 100,000 resolved tickets across 100 organizations.

Seeds a fresh database, starts the tickets API and the tickets worker as real processes
(``python -m insightdesk.tickets api|worker``), then, in one session:

1. idle: ``GET /tickets`` latency with nothing else running (baseline);
2. busy: the same requests while the worker runs one auto-close job (variant), measuring the
   job's wall time, its transactions (one per batch; the database's commit counter beside it)
   and the worker's peak memory (``VmHWM``, before and after);
3. idle again (a second baseline, so drift shows).

    uv run python bench/auto_close.py [--tickets 100000] [--orgs 100] [--batch 500]

Needs a PostgreSQL where it may create a database (``DATABASE_URL``/``PG*``, else
127.0.0.1:5432 as postgres). Prints a table and writes JSON (``--out``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import sql

from insightdesk.shared.queue import JobState, QueueClient
from insightdesk.tickets.database import migrate_database
from insightdesk.tickets.tokens import token_hash

HERE = Path(__file__).resolve().parent
TOKEN = "idk_bench-admin-token"


def admin_dsn() -> str:
    return os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"


def with_db(dsn: str, name: str) -> str:
    return psycopg.conninfo.make_conninfo(dsn, dbname=name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


SEED = """
INSERT INTO tickets.organizations (id, name, created_at, auto_close_after_days)
SELECT ('00000000-0000-0000-0000-' || lpad(to_hex(o), 12, '0'))::uuid, 'Org ' || o,
       now() - interval '400 days', 7
FROM generate_series(1, %(orgs)s) o;

INSERT INTO tickets.users (id, organization_id, email, name, role, api_token_hash, created_at)
SELECT gen_random_uuid(), ('00000000-0000-0000-0000-' || lpad(to_hex(o), 12, '0'))::uuid,
       'c' || c || '@org' || o || '.example', 'Customer ' || c, 'customer',
       encode(sha256(('bench-' || o || '-' || c)::bytea), 'hex'), now() - interval '400 days'
FROM generate_series(1, %(orgs)s) o, generate_series(1, 10) c;

INSERT INTO tickets.tickets (id, organization_id, subject, status, priority, customer_id,
                             created_at, updated_at, resolved_at)
SELECT gen_random_uuid(), u.organization_id, 'Ticket ' || n, 'resolved', 'normal', u.id,
       now() - interval '40 days', now() - interval '10 days',
       now() - (interval '8 days' + (n %% 1000) * interval '1 minute')
FROM (SELECT organization_id, id, row_number() OVER (PARTITION BY organization_id) AS k
      FROM tickets.users) u,
     generate_series(1, %(per_customer)s) n;

INSERT INTO tickets.tickets (id, organization_id, subject, status, priority, customer_id,
                             created_at, updated_at)
SELECT gen_random_uuid(), organization_id, 'Open ' || n, 'open', 'normal', id,
       now() - n * interval '1 minute', now()
FROM tickets.users, generate_series(1, 5) n;
"""


async def seed(dsn: str, tickets: int, orgs: int) -> dict[str, Any]:
    await migrate_database(dsn)
    per_customer = tickets // (orgs * 10)
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        params = {"orgs": orgs, "per_customer": per_customer}
        for statement in SEED.split(";\n\n"):
            await conn.execute(statement.strip().rstrip(";"), params)
        await conn.execute(
            "INSERT INTO tickets.users (id, organization_id, email, name, role, api_token_hash, "
            "created_at) VALUES (%s, '00000000-0000-0000-0000-000000000001', "
            "'admin@org1.example', 'Admin', 'admin', %s, now())",
            (uuid.uuid4(), token_hash(TOKEN)),
        )
        await conn.execute("ANALYZE")
        cur = await conn.execute("SELECT count(*) FROM tickets.tickets WHERE status = 'resolved'")
        row = await cur.fetchone()
    async with QueueClient.connect(dsn) as client:
        for queue in ("probe-sla", "probe-reports"):  # ticket.closed fans out like production
            await client.create_queue(queue)
            await client.subscribe("ticket.closed", queue)
    return {"resolved": int(row[0]) if row else 0}


def start(dsn: str, process: str, port_env: str, port: int, batch: int) -> Any:
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "INSIGHTDESK_ENV": "test",
        "TICKETS_LOG_LEVEL": "WARNING",
        port_env: str(port),
        "TICKETS_AUTO_CLOSE_BATCH_SIZE": str(batch),
    }
    return asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "insightdesk.tickets",
        process,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def wait_ready(http: httpx.AsyncClient, url: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if (await http.get(url)).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.3)
    raise RuntimeError(f"{url} not ready")


async def hammer(http: httpx.AsyncClient, base: str, stop: asyncio.Event) -> list[float]:
    """Sequential GET /tickets (one client, like a user paging) until ``stop``; seconds each."""
    latencies = []
    headers = {"Authorization": f"Bearer {TOKEN}"}
    while not stop.is_set():
        started = time.perf_counter()
        response = await http.get(f"{base}/tickets", params={"limit": 50}, headers=headers)
        latencies.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text
    return latencies


async def timed_window(http: httpx.AsyncClient, base: str, seconds: float) -> list[float]:
    stop = asyncio.Event()
    task = asyncio.create_task(hammer(http, base, stop))
    await asyncio.sleep(seconds)
    stop.set()
    return await task


def summary(latencies: list[float]) -> dict[str, float]:
    ms = sorted(x * 1000 for x in latencies)
    q = statistics.quantiles(ms, n=100)
    return {"requests": len(ms), "p50_ms": q[49], "p95_ms": q[94], "p99_ms": q[98]}


def vm_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


async def commits(dsn: str, name: str) -> int:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = %s", (name,)
        )
        row = await cur.fetchone()
    return int(row[0]) if row else 0


async def run(args: argparse.Namespace) -> dict[str, Any]:
    name = f"bench_autoclose_{os.getpid()}"
    server = admin_dsn()
    async with await psycopg.AsyncConnection.connect(server, autocommit=True) as admin:
        await admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = with_db(server, name)
    procs = []
    try:
        t0 = time.perf_counter()
        seeded = await seed(dsn, args.tickets, args.orgs)
        seed_s = time.perf_counter() - t0
        api_port, worker_port = free_port(), free_port()
        procs.append(await start(dsn, "api", "TICKETS_HTTP_PORT", api_port, args.batch))
        procs.append(
            await start(dsn, "worker", "TICKETS_WORKER_HTTP_PORT", worker_port, args.batch)
        )
        worker = procs[1]
        base = f"http://127.0.0.1:{api_port}"
        async with httpx.AsyncClient(timeout=30) as http, QueueClient.connect(dsn) as client:
            await wait_ready(http, f"{base}/readyz")
            await wait_ready(http, f"http://127.0.0.1:{worker_port}/readyz")
            await timed_window(http, base, 2)  # warm-up
            idle = await timed_window(http, base, args.window)
            hwm_before = vm_kib(worker.pid, "VmHWM")
            commits_before = await commits(server, name)
            stop = asyncio.Event()
            busy_task = asyncio.create_task(hammer(http, base, stop))
            started = time.perf_counter()
            job_id = await client.send("ticket-actions", {"action": "auto-close"})
            assert job_id is not None
            while True:
                info = await client.get_job(job_id)
                if info.state in {JobState.COMPLETED, JobState.FAILED}:
                    break
                await asyncio.sleep(0.05)
            wall = time.perf_counter() - started
            stop.set()
            busy = await busy_task
            commits_after = await commits(server, name)
            hwm_after = vm_kib(worker.pid, "VmHWM")
            idle_again = await timed_window(http, base, args.window)
            async with await psycopg.AsyncConnection.connect(dsn) as conn:
                cur = await conn.execute(
                    "SELECT count(*) FILTER (WHERE status = 'closed'), "
                    "count(*) FILTER (WHERE status = 'resolved') FROM tickets.tickets"
                )
                closed, left = await cur.fetchone() or (0, 0)
            mails = len(await client.find_jobs("email", limit=1_000_000))
        output = info.output or {}
        return {
            "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
            "tickets": args.tickets,
            "organizations": args.orgs,
            "batch_size": args.batch,
            "seed_seconds": round(seed_s, 1),
            "resolved_before": seeded["resolved"],
            "job_state": info.state.value,
            "job_output": output,
            "closed": closed,
            "still_resolved": left,
            "ticket_closed_mails": mails,
            "wall_seconds": round(wall, 2),
            "tickets_per_second": round(closed / wall) if wall else None,
            "transactions_batches": output.get("batches"),
            "db_commits_during_run": commits_after - commits_before,
            "api_requests_during_run": len(busy),
            "worker_vmhwm_kib_before": hwm_before,
            "worker_vmhwm_kib_after": hwm_after,
            "api_idle": summary(idle),
            "api_busy": summary(busy),
            "api_idle_again": summary(idle_again),
        }
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
        async with await psycopg.AsyncConnection.connect(server, autocommit=True) as admin:
            await admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def report(result: dict[str, Any]) -> None:
    idle, busy, again = result["api_idle"], result["api_busy"], result["api_idle_again"]
    print(
        f"auto-close: {result['closed']:,} of {result['resolved_before']:,} resolved tickets "
        f"closed across {result['organizations']} organizations (batch {result['batch_size']})"
    )
    print(
        f"  wall time {result['wall_seconds']} s ({result['tickets_per_second']:,} tickets/s), "
        f"{result['transactions_batches']} batch transactions, "
        f"{result['db_commits_during_run']:,} database commits during the run "
        f"(incl. {result['api_requests_during_run']:,} API requests)"
    )
    print(
        f"  worker peak RSS (VmHWM) {result['worker_vmhwm_kib_before'] / 1024:.1f} MiB before, "
        f"{result['worker_vmhwm_kib_after'] / 1024:.1f} MiB after; "
        f"{result['ticket_closed_mails']:,} ticket-closed mails queued"
    )
    print()
    print("| GET /tickets (limit 50) | requests | p50 ms | p95 ms | p99 ms |")
    print("|---|---|---|---|---|")
    for label, row in (("idle", idle), ("during auto-close", busy), ("idle again", again)):
        print(
            f"| {label} | {row['requests']} | {row['p50_ms']:.1f} | {row['p95_ms']:.1f} "
            f"| {row['p99_ms']:.1f} |"
        )
    print(
        f"\np99 busy / idle: {busy['p99_ms'] / idle['p99_ms']:.2f}x "
        f"(idle again: {again['p99_ms'] / idle['p99_ms']:.2f}x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--orgs", type=int, default=100)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--window", type=float, default=10.0, help="seconds per idle window")
    parser.add_argument("--out", type=Path, default=HERE / "results-auto-close.json")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    report(result)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nJSON: {args.out}")


if __name__ == "__main__":
    main()
