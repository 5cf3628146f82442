"""Operations console at scale: ``stats()``, each page's server time and the job search on a
1,000,000-row job table with 100 queues, beside reference statements; the pause-to-stop /
resume-to-claim latency of a running worker; and (``--overhead-only``) what the console's job
indexes cost the engine's send+drain throughput.

    uv run python bench/console_bench.py [--jobs 1000000] [--queues 100] [--repeat 7]

Needs a PostgreSQL where it may create a database (``DATABASE_URL`` pointing at the server's
admin database, else postgres@127.0.0.1:5432). Prints a table and writes
``bench/results-console/console_bench.json``. Baseline and variant alternate in one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import conninfo, sql

from insightdesk.shared.ops import ConsoleSettings, create_console_app
from insightdesk.shared.queue import Job, QueueClient
from insightdesk.shared.queue.control import QueueControl
from insightdesk.shared.queue.migrator import migrate
from insightdesk.shared.queue.search import JobFilter

TOKEN = "bench-operator-token-0123456789"
OUT = Path(__file__).parent / "results-console" / "console_bench.json"
OVERHEAD_OUT = Path(__file__).parent / "results-console" / "index_overhead.json"

# Reference statements: the engine's original stats (one GROUP BY over the whole job table,
# the baseline of stats()) and a hand-written listing of one queue's failed jobs (a lower bound
# for the queue page's database time).
NAIVE_STATS = """
SELECT q.name, count(j.id) FILTER (WHERE j.state = 'created') AS created,
       count(j.id) FILTER (WHERE j.state = 'failed') AS failed,
       count(j.id) FILTER (WHERE j.state < 'active' AND j.start_after <= now()) AS ready
FROM queue.queue q LEFT JOIN queue.job j ON j.name = q.name GROUP BY q.name"""
NAIVE_LIST = """
SELECT id, state FROM queue.job WHERE name = %s AND state = 'failed'
ORDER BY created_on DESC LIMIT 50"""


def _with_db(dsn: str, name: str) -> str:
    params = conninfo.conninfo_to_dict(dsn)
    params["dbname"] = name
    return conninfo.make_conninfo("", **params)


async def populate(dsn: str, jobs: int, queues: int) -> None:
    """``queues`` queues (every tenth has a dead-letter queue) and ``jobs`` jobs spread over
    them: 85% completed, 5% failed, 6% ready, 2% delayed, 1% cancelled, 1% active."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await migrate(conn, "queue")
        await conn.execute(
            "INSERT INTO queue.queue (name) SELECT 'dead-' || g FROM generate_series(0, %s) g",
            (queues // 10,),
        )
        await conn.execute(
            "INSERT INTO queue.queue (name, dead_letter) "
            "SELECT 'q-' || lpad(g::text, 3, '0'), 'dead-' || (g / 10) "
            "FROM generate_series(0, %s - 1) g",
            (queues,),
        )
        await conn.execute(
            """
            INSERT INTO queue.job (name, state, data, created_on, start_after, started_on,
                                   completed_on, output, singleton_key)
            SELECT 'q-' || lpad((g %% %(queues)s)::text, 3, '0'),
                   s.state::queue.job_state,
                   jsonb_build_object('ticket', g, 'org', g %% 1000),
                   now() - (g %% 3600) * interval '1 second',
                   CASE WHEN s.state = 'created' AND r >= 0.96 THEN now() + interval '1 hour'
                        ELSE now() - (g %% 3600) * interval '1 second' END,
                   CASE WHEN s.state IN ('completed', 'failed', 'active')
                        THEN now() - (g %% 3600) * interval '1 second' + interval '50 ms' END,
                   CASE WHEN s.state IN ('completed', 'failed', 'cancelled')
                        THEN now() - (g %% 3600) * interval '1 second' + interval '80 ms' END,
                   CASE WHEN s.state = 'failed'
                        THEN '{"type": "RuntimeError", "message": "boom"}'::jsonb END,
                   CASE WHEN g %% 10 = 0 THEN 'key-' || (g %% 5000) END
            FROM generate_series(1, %(jobs)s) g,
                 LATERAL (SELECT random() + g * 0 AS r) rnd,  -- correlated: one draw per row
                 LATERAL (SELECT CASE WHEN r < 0.85 THEN 'completed' WHEN r < 0.90 THEN 'failed'
                                      WHEN r < 0.98 THEN 'created' WHEN r < 0.99 THEN 'cancelled'
                                      ELSE 'active' END AS state) s
            """,
            {"jobs": jobs, "queues": queues},
        )
        await conn.execute("VACUUM ANALYZE queue.job")


async def timed(fn: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await fn()
    return (time.perf_counter() - started) * 1000


async def measure(dsn: str, repeat: int) -> dict[str, dict[str, float]]:
    results: dict[str, list[float]] = {}
    async with QueueClient.connect(dsn, migrate_schema=False) as client:
        control = QueueControl(client)
        await control.snapshot()
        app = create_console_app(
            client, ConsoleSettings(token=TOKEN, cookie_secure=False, environment="test")
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            login = await http.get("/login")
            csrf = login.text.split('name="csrf_token" value="')[1].split('"')[0]
            await http.post("/login", data={"token": TOKEN, "csrf_token": csrf})
            failed = await control.search(
                JobFilter.build(queues=["q-050"], states=["failed"]),
                limit=1,
            )
            job_id = failed.jobs[0].id

            async def get(path: str) -> None:
                response = await http.get(path)
                assert response.status_code == 200, (path, response.status_code)

            async def naive(statement: str, *args: object) -> None:
                async with client.pool.connection() as conn:
                    await (await conn.execute(statement, args or None)).fetchall()

            cases: dict[str, Callable[[], Awaitable[Any]]] = {
                "stats() [engine]": client.stats,
                "stats [naive GROUP BY, baseline]": lambda: naive(NAIVE_STATS),
                "page /": lambda: get("/"),
                "page /queues/q-050": lambda: get("/queues/q-050"),
                "page /queues/q-050?state=failed": lambda: get("/queues/q-050?state=failed"),
                "list failed of a queue [hand-written SQL, lower bound]": lambda: naive(
                    NAIVE_LIST, "q-050"
                ),
                "page /jobs/{id}": lambda: get(f"/jobs/{job_id}"),
                "page /failed": lambda: get("/failed"),
                "page /failed?queue=dead-5": lambda: get("/failed?queue=dead-5"),
                "page /schedules": lambda: get("/schedules"),
                "api /api/overview": lambda: get("/api/overview"),
                "api /api/jobs?data={org:7}&queue=q-007": lambda: get(
                    '/api/jobs?queue=q-007&data={"org": 7}'
                ),
                "api /api/jobs?key=key-10": lambda: get("/api/jobs?key=key-10"),
                "history snapshot (one slot, all queues)": lambda: control.snapshot(every=1),
            }
            for fn in cases.values():
                await fn()  # warm up (prepared statements, caches)
            for _ in range(repeat):  # alternate every case each round
                for name, fn in cases.items():
                    results.setdefault(name, []).append(await timed(fn))
    return {
        name: {"median_ms": statistics.median(v), "max_ms": max(v), "n": len(v)}
        for name, v in results.items()
    }


async def pause_latency(dsn: str, rounds: int) -> dict[str, float]:
    """A worker drains a steady stream; pause, and measure how long after the pause committed
    the last claim started (database clock); resume, and measure the first claim after it.
    The worker polls every 5 s, so a resume seen sooner came by NOTIFY."""
    stop_ms: list[float] = []
    resume_ms: list[float] = []
    async with QueueClient.connect(dsn, migrate_schema=False) as client:
        control = QueueControl(client)
        await client.create_queue("latency")

        async def handle(job: Job) -> None:
            await asyncio.sleep(0.001)

        await client.work("latency", handle, concurrency=4, poll_interval=5.0)
        for _ in range(rounds):
            await client.send_many("latency", [{} for _ in range(2000)])
            await asyncio.sleep(0.2)
            await control.pause("latency")
            async with client.pool.connection() as conn:
                cur = await conn.execute(  # the pause transaction's time
                    "SELECT updated_on FROM queue.queue WHERE name = 'latency'"
                )
                found = await cur.fetchone()
            assert found is not None
            paused_at = found[0]
            await asyncio.sleep(0.5)
            async with client.pool.connection() as conn:
                row = await (
                    await conn.execute(
                        "SELECT max(started_on) FROM queue.job WHERE name = 'latency'"
                    )
                ).fetchone()
            assert row is not None
            stop_ms.append(max(0.0, (row[0] - paused_at).total_seconds() * 1000))
            resumed = time.perf_counter()
            ready_before = (await client.stats("latency"))[0].ready
            await control.resume("latency")
            while (await client.stats("latency"))[0].ready >= ready_before:  # noqa: ASYNC110  # polls the database, not a local flag
                await asyncio.sleep(0.001)
            resume_ms.append((time.perf_counter() - resumed) * 1000)
            await control.bulk("delete", JobFilter.build(queues=["latency"]))
    return {
        "pause_to_last_claim_p50_ms": statistics.median(stop_ms),
        "pause_to_last_claim_max_ms": max(stop_ms),
        "resume_to_first_claim_p50_ms": statistics.median(resume_ms),
        "resume_to_first_claim_max_ms": max(resume_ms),
        "rounds": rounds,
    }


async def _send_and_drain(dsn: str, jobs: int) -> float:
    """Jobs per second to send ``jobs`` jobs in one call and drain them with one worker."""
    async with QueueClient.connect(dsn) as client:
        await client.create_queue("bench")
        done = asyncio.Event()
        seen = 0

        async def handle(job: Job) -> None:
            nonlocal seen
            seen += 1
            if seen == jobs:
                done.set()

        started = time.perf_counter()
        await client.send_many("bench", [{"n": n} for n in range(jobs)])
        await client.work("bench", handle, concurrency=10, supervise=False)
        await asyncio.wait_for(done.wait(), 300)
        rate = jobs / (time.perf_counter() - started)
        await client.close()
        await client.delete_queue("bench")
        return rate


async def index_overhead(server: str, jobs: int, rounds: int) -> dict[str, float]:
    """What the console's job search indexes (job_search_queued, job_search_finished; one
    job_search until schema v6) cost the engine: send ``jobs`` jobs in one call and drain them
    with one worker, in a database with the indexes and in one without them, alternating."""
    rates: dict[str, list[float]] = {"with": [], "without": []}
    names = {v: f"console_idx_{v}_{uuid.uuid4().hex[:6]}" for v in rates}
    with psycopg.connect(server, autocommit=True) as admin:
        for name in names.values():
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        for variant, name in names.items():
            async with await psycopg.AsyncConnection.connect(
                _with_db(server, name), autocommit=True
            ) as conn:
                await migrate(conn, "queue")
                if variant == "without":
                    await conn.execute(
                        "DROP INDEX queue.job_search_queued, queue.job_search_finished"
                    )
        for _ in range(rounds):
            for variant, name in names.items():
                rates[variant].append(await _send_and_drain(_with_db(server, name), jobs))
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            for name in names.values():
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
    with_, without = statistics.median(rates["with"]), statistics.median(rates["without"])
    return {
        "send_and_drain_jobs_per_s_with_indexes": with_,
        "send_and_drain_jobs_per_s_without_indexes": without,
        "ratio_with_over_without": with_ / without,
        "rounds": rounds,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--queues", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument(
        "--overhead-only", action="store_true", help="only the index-overhead comparison"
    )
    parser.add_argument("--overhead-jobs", type=int, default=20_000)
    args = parser.parse_args()
    server_dsn = os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"
    if args.overhead_only:
        overhead = await index_overhead(server_dsn, args.overhead_jobs, 3)
        for key, value in overhead.items():
            print(f"{key}: {value:,.2f}")
        OVERHEAD_OUT.parent.mkdir(exist_ok=True)
        OVERHEAD_OUT.write_text(json.dumps(overhead, indent=2))
        return
    server = os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"
    name = f"console_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = _with_db(server, name)
    try:
        started = time.perf_counter()
        await populate(dsn, args.jobs, args.queues)
        print(
            f"populated {args.jobs:,} jobs in {args.queues} queues in "
            f"{time.perf_counter() - started:.0f} s"
        )
        pages = await measure(dsn, args.repeat)
        latency = await pause_latency(dsn, args.rounds)
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
    width = max(len(k) for k in pages)
    print(f"\n{'case'.ljust(width)}  median ms  max ms")
    for case, row in pages.items():
        print(f"{case.ljust(width)}  {row['median_ms']:9.1f}  {row['max_ms']:6.1f}")
    print()
    for key, value in latency.items():
        print(f"{key}: {value:.1f}" if isinstance(value, float) else f"{key}: {value}")
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(
        json.dumps(
            {"jobs": args.jobs, "queues": args.queues, "pages": pages, "pause": latency},
            indent=2,
        )
    )
    print(f"\nwrote {OUT}")


if __name__ == "__main__":
    asyncio.run(main())
