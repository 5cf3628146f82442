"""The engine at scale (issue 7): deep delayed backlogs, constant-cost stats and maintenance, churn.

Each scenario runs in a database of its own (created here, dropped afterwards) against the
PostgreSQL at ``--dsn`` (default 127.0.0.1:5432, the admin database). Baselines and variants run
in the same session, alternating where a scenario has both, and are reported as ratios:

  drain      20k ready jobs alone vs behind 100k delayed ones (alternating, ``--rounds``), and a
             1M-job table with 10 % delayed: one drain by a worker process (its maintenance
             duties included), 20k at the start and 20k after 300k jobs, vs the empty table
  idle       idle pickup (send -> handler start) on an empty queue vs one holding 100k delayed
  explain    EXPLAIN (ANALYZE, BUFFERS) of the claim: buffers touched, empty vs 100k delayed vs 1M
  observe    stats(), ready_count() and a maintenance pass with nothing due at 1M rows
  purge      another queue's pickup p95 while 1M finished jobs are purged vs idle
  churn      10 fill-and-drain rounds of 100k (autovacuum off): last round vs first

    uv run python bench/scale_tables.py [--only drain,idle,...] [--scale 0.1] [--out FILE]

``--scale`` shrinks every job count (record the scale you used). Prints tables, writes JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import psycopg
from psycopg import conninfo, sql

from insightdesk.shared.queue import Job, JobOptions, QueueClient, QueueOptions
from insightdesk.shared.queue.store import PgMaintenance

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results-2026-12-03" / "scale_tables.json"
CHUNK = 5000


def _dsn_for(admin: str, dbname: str) -> str:
    params = conninfo.conninfo_to_dict(admin)
    params["dbname"] = dbname
    return conninfo.make_conninfo("", **params)


@contextlib.asynccontextmanager
async def fresh_db(admin: str, label: str) -> AsyncIterator[str]:
    name = f"bench_scale_{label}_{uuid.uuid4().hex[:6]}"
    async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
        await conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield _dsn_for(admin, name)
    finally:
        async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
            await conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


async def fill(client: QueueClient, queue: str, n: int, options: JobOptions | None = None) -> None:
    for start in range(0, n, CHUNK):
        await client.send_many(
            queue, [{"i": i} for i in range(start, min(n, start + CHUNK))], options
        )


async def fill_mixed(client: QueueClient, queue: str, n: int, delayed_every: int) -> None:
    """n jobs, every ``delayed_every``-th one delayed by an hour, interleaved in send order."""
    later = JobOptions(start_after=3600)
    for start in range(0, n, CHUNK):
        ready = [{"i": i} for i in range(start, min(n, start + CHUNK)) if i % delayed_every]
        delayed = [{"i": i} for i in range(start, min(n, start + CHUNK)) if not i % delayed_every]
        await client.send_many(queue, ready)
        await client.send_many(queue, delayed, later)


class Counter:
    def __init__(self) -> None:
        self.n = 0
        self.marks: dict[int, float] = {}
        self.waiters: dict[int, asyncio.Event] = {}

    async def handler(self, job: Job) -> None:
        self.n += 1
        if self.n in self.waiters:
            self.marks[self.n] = time.perf_counter()
            self.waiters[self.n].set()

    def at(self, n: int) -> asyncio.Event:
        self.waiters[n] = asyncio.Event()
        return self.waiters[n]


async def timed_drain(dsn: str, queue: str, windows: list[tuple[int, int]]) -> list[float]:
    """Work ``queue`` (1 worker, concurrency 10, its own client as a worker process would have)
    and return jobs/s over each (start, end) window of the handled-job count."""
    counter = Counter()
    events = {n: counter.at(n) for w in windows for n in w if n > 0}
    rates = []
    async with QueueClient.connect(dsn, migrate_schema=False) as client:
        began = time.perf_counter()
        await client.work(queue, counter.handler, concurrency=10)
        for lo, hi in windows:
            await asyncio.wait_for(events[hi].wait(), timeout=900)
            t0 = counter.marks[lo] if lo > 0 else began
            rates.append((hi - lo) / (counter.marks[hi] - t0))
    return rates


async def pickups(dsn: str, queue: str, reps: int, gap: tuple[float, float]) -> list[float]:
    """Idle pickup latencies (ms): send one job to an idle worker, time until its handler starts."""
    return [ms for _, ms in await stamped_pickups(dsn, queue, reps, gap)]


async def stamped_pickups(
    dsn: str, queue: str, reps: int, gap: tuple[float, float]
) -> list[tuple[float, float]]:
    """(perf_counter at the send, pickup ms) of each of ``reps`` sends to an idle worker."""
    got: asyncio.Queue[float] = asyncio.Queue()

    async def handler(job: Job) -> None:
        got.put_nowait(time.perf_counter())

    out = []
    async with QueueClient.connect(dsn, migrate_schema=False) as client:
        await client.work(queue, handler, concurrency=10, supervise=False)
        await asyncio.sleep(0.3)
        for _ in range(reps):
            t0 = time.perf_counter()
            await client.send(queue, {"t": t0})
            t1 = await asyncio.wait_for(got.get(), timeout=15)
            out.append((t0, (t1 - t0) * 1000))
            await asyncio.sleep(random.uniform(*gap))
    return out


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


async def timed(fn: Callable[[], Awaitable[Any]], reps: int) -> dict[str, float]:
    ms = []
    for _ in range(reps):
        t0 = time.perf_counter()
        await fn()
        ms.append((time.perf_counter() - t0) * 1000)
    return {"median_ms": statistics.median(ms), "p95_ms": pct(ms, 0.95), "max_ms": max(ms)}


async def explain_claim(dsn: str, client: QueueClient, queue: str) -> dict[str, Any]:
    params = {
        "names": [queue],
        "limits": [10],
        "default_heartbeat": 15.0,
        "done_ids": [],
        "done_leases": [],
        "done_outputs": [],
    }
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cur = await conn.execute(
            ("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + client.sql["fetch"]).encode(), params
        )
        row = await cur.fetchone()
        await conn.rollback()
    assert row is not None
    plan = row[0][0]
    top = plan["Plan"]
    return {
        "buffers": top.get("Shared Hit Blocks", 0) + top.get("Shared Read Blocks", 0),
        "execution_ms": plan["Execution Time"],
        "rows": top.get("Actual Rows"),
    }


# ---------------------------------------------------------------------------- scenarios


async def scenario_drain(admin: str, scale: float, rounds: int, big: bool = True) -> dict[str, Any]:
    n_ready, n_delayed = int(20_000 * scale), int(100_000 * scale)
    out: dict[str, Any] = {"empty": [], "delayed": []}
    for r in range(rounds):
        for kind in ("empty", "delayed") if r % 2 == 0 else ("delayed", "empty"):
            async with fresh_db(admin, "drain") as dsn, QueueClient.connect(dsn) as client:
                await client.create_queue("q")
                if kind == "delayed":
                    await fill(client, "q", n_delayed, JobOptions(start_after=3600))
                await fill(client, "q", n_ready)
                (rate,) = await timed_drain(dsn, "q", [(0, n_ready)])
                out[kind].append(rate)
                print(f"  drain {kind:8} round {r + 1}: {rate:,.0f} jobs/s", flush=True)
    if not big:
        return out
    # 1M jobs, 10 % delayed: the first 20k and 20k after 300k, against an empty table's drain
    big_n, window, skip = int(1_000_000 * scale), int(20_000 * scale), int(300_000 * scale)
    async with fresh_db(admin, "big") as dsn, QueueClient.connect(dsn) as client:
        await client.create_queue("q")
        t0 = time.perf_counter()
        await fill_mixed(client, "q", big_n, delayed_every=10)
        out["big_fill_s"] = time.perf_counter() - t0
        # one drain by a worker process's client (its duties included: the maintenance leader
        # vacuums along the way, as in production on a server without autovacuum), timed over
        # the first 20k and over the 20k after 300k
        t0 = time.perf_counter()
        first, later = await timed_drain(dsn, "q", [(0, window), (skip, skip + window)])
        out["big_drain_s"] = time.perf_counter() - t0
        async with await psycopg.AsyncConnection.connect(dsn) as conn:
            cur = await conn.execute(
                "SELECT n_live_tup, n_dead_tup, vacuum_count FROM pg_stat_user_tables "
                "WHERE relid = 'queue.job'::regclass"
            )
            out["big_table"] = await cur.fetchone()
        out["big"] = {"start": first, "after_300k": later}
        print(
            f"  drain 1M/10% delayed: start {first:,.0f}, after 300k {later:,.0f} jobs/s "
            f"(table live, dead, vacuums: {out['big_table']})",
            flush=True,
        )
        out["explain_big"] = await explain_claim(dsn, client, "q")
        out["observe"] = await observe(client)
    out["empty_after_big"] = []
    async with fresh_db(admin, "drain") as dsn, QueueClient.connect(dsn) as client:
        await client.create_queue("q")
        await fill(client, "q", n_ready)
        (rate,) = await timed_drain(dsn, "q", [(0, n_ready)])
        out["empty"].append(rate)
        print(f"  drain empty (after 1M): {rate:,.0f} jobs/s", flush=True)
    return out


async def select_1(client: QueueClient) -> None:
    async with client.pool.connection() as conn:
        await conn.execute("SELECT 1")


async def observe(client: QueueClient) -> dict[str, Any]:
    """stats(), ready_count(), maintenance with nothing due, on the table as it is."""
    first = time.perf_counter()
    result = await client.supervisor.maintain()  # may vacuum after the drain: work due
    first_ms = (time.perf_counter() - first) * 1000
    async with client.pool.connection() as conn:
        cur = await conn.execute("SELECT count(*) FROM queue.job")
        row = await cur.fetchone()
    found = {
        "rows": row[0] if row else None,
        "first_maintain": {"ms": first_ms, "vacuumed": list(result.vacuumed)},
        "select_1": await timed(lambda: select_1(client), 20),  # one round trip, for scale
        "stats": await timed(client.stats, 20),
        "stats_one_queue": await timed(lambda: client.stats("q"), 20),
        "ready_count": await timed(lambda: client.ready_count("q"), 20),
        "maintain_nothing_due": await timed(client.supervisor.maintain, 20),
    }
    print(
        f"  observe at {found['rows']:,} rows: "
        + ", ".join(
            f"{k} {v['median_ms']:.2f} ms"
            for k, v in found.items()
            if isinstance(v, dict) and "median_ms" in v
        ),
        flush=True,
    )
    return found


async def scenario_idle(admin: str, scale: float, rounds: int) -> dict[str, Any]:
    out: dict[str, Any] = {"empty": [], "delayed": [], "explain": {}}
    for r in range(rounds):
        for kind in ("empty", "delayed") if r % 2 == 0 else ("delayed", "empty"):
            async with fresh_db(admin, "idle") as dsn, QueueClient.connect(dsn) as client:
                await client.create_queue("q")
                if kind == "delayed":
                    await fill(client, "q", int(100_000 * scale), JobOptions(start_after=3600))
                    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as c:
                        await c.execute("ANALYZE queue.job")
                await fill(client, "q", 20)
                out["explain"].setdefault(kind, await explain_claim(dsn, client, "q"))
                await timed_drain(dsn, "q", [(0, 20)])
                lat = await pickups(dsn, "q", 40, (0.1, 0.3))
                out[kind].append(lat)
                print(
                    f"  idle {kind:8} round {r + 1}: "
                    f"p50 {pct(lat, 0.5):.2f} p95 {pct(lat, 0.95):.2f} ms",
                    flush=True,
                )
    return out


async def scenario_purge(admin: str, scale: float, pace: float | None = None) -> dict[str, Any]:
    n = int(1_000_000 * scale)
    async with fresh_db(admin, "purge") as dsn, QueueClient.connect(dsn) as client:
        await client.create_queue("old", QueueOptions(delete_after=0))
        await client.create_queue("live")
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            await conn.execute(
                "INSERT INTO queue.job (name, data, state, started_on, completed_on, delete_after) "
                "SELECT 'old', jsonb_build_object('i', g), 'completed', now() - interval '1 day', "
                "now() - interval '1 day', 0 FROM generate_series(1, %s) g",
                (n,),
            )
            await conn.execute("VACUUM ANALYZE queue.job")
        out: dict[str, Any] = {"rows": n}
        out["idle_before"] = await pickups(dsn, "live", 60, (0.05, 0.15))
        vacuum_began: list[float] = []  # when the pass moved from the purge to its VACUUM
        vacuum = PgMaintenance.vacuum

        async def noted(self: PgMaintenance, table: str, *, paced: bool = False) -> None:
            vacuum_began.append(time.perf_counter())
            await vacuum(self, table, paced=paced)

        PgMaintenance.vacuum = noted  # type: ignore[method-assign]
        try:
            async with QueueClient.connect(dsn, migrate_schema=False) as leader:
                if pace is not None:
                    leader.supervisor.pace = pace
                out["pace"] = leader.supervisor.pace
                t0 = time.perf_counter()
                task = asyncio.create_task(leader.supervisor.maintain())
                stamped: list[tuple[float, float]] = []
                while not task.done():
                    stamped += await stamped_pickups(dsn, "live", 20, (0.05, 0.15))
                result = await task
                out["purge_s"] = time.perf_counter() - t0
                out["purged"] = result.purged
                out["vacuumed"] = list(result.vacuumed)
        finally:
            PgMaintenance.vacuum = vacuum  # type: ignore[method-assign]
        split = vacuum_began[0] if vacuum_began else float("inf")
        out["vacuum_s"] = t0 + out["purge_s"] - split if vacuum_began else 0.0
        during = [ms for _, ms in stamped]
        out["during"] = during
        out["during_purge"] = [ms for t, ms in stamped if t < split]
        out["during_vacuum"] = [ms for t, ms in stamped if t >= split]
        out["idle_after"] = await pickups(dsn, "live", 60, (0.05, 0.15))
        idle = out["idle_before"] + out["idle_after"]
        print(
            f"  purge {result.purged:,} rows and vacuum in {out['purge_s']:.1f} s (vacuum "
            f"{out['vacuum_s']:.1f} s); other queue pickup p95 idle {pct(idle, 0.95):.2f} ms, "
            f"during {pct(during, 0.95):.2f} ms",
            flush=True,
        )
        return out


async def scenario_churn(admin: str, scale: float, rounds: int = 10) -> dict[str, Any]:
    n = int(100_000 * scale)
    rates: list[float] = []
    async with fresh_db(admin, "churn") as dsn, QueueClient.connect(dsn) as client:
        await client.create_queue("c")
        counter = Counter()
        worker = await client.work("c", counter.handler, concurrency=10)  # supervisor included
        try:
            for r in range(rounds):
                done = counter.at((r + 1) * n)
                t0 = time.perf_counter()
                await fill(client, "c", n)
                await asyncio.wait_for(done.wait(), timeout=900)
                rates.append(n / (time.perf_counter() - t0))
                print(f"  churn round {r + 1}: {rates[-1]:,.0f} jobs/s", flush=True)
        finally:
            await worker.stop()
            await client.supervisor.stop()
        async with await psycopg.AsyncConnection.connect(dsn) as conn:
            cur = await conn.execute(
                "SELECT n_live_tup, n_dead_tup, vacuum_count, autovacuum_count, "
                "current_setting('autovacuum') FROM pg_stat_user_tables "
                "WHERE relid = 'queue.job'::regclass"
            )
            health = await cur.fetchone()
    return {"rates": rates, "table": list(health) if health else None}


async def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument(
        "--only", default="idle,drain,purge,churn", help="delayed: the drain without the 1M table"
    )
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--churn-scale", type=float, default=None, help="default: --scale")
    ap.add_argument(
        "--purge-pace", type=float, default=None, help="Supervisor.pace for the purge scenario"
    )
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    args = ap.parse_args()
    results: dict[str, Any] = {
        "scale": args.scale,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    async with await psycopg.AsyncConnection.connect(args.dsn) as conn:
        cur = await conn.execute("SELECT version(), current_setting('autovacuum')")
        results["server"] = await cur.fetchone()
    todo = args.only.split(",")
    if "idle" in todo:
        print("idle pickup, empty vs 100k delayed", flush=True)
        results["idle"] = await scenario_idle(args.dsn, args.scale, args.rounds)
    if "drain" in todo or "delayed" in todo:
        print("drain, empty vs delayed backlog; 1M table", flush=True)
        results["drain"] = await scenario_drain(
            args.dsn, args.scale, args.rounds, big="drain" in todo
        )
    if "purge" in todo:
        print("purge of 1M finished jobs vs another queue's pickup", flush=True)
        results["purge"] = await scenario_purge(args.dsn, args.scale, args.purge_pace)
    if "churn" in todo:
        print("churn, 10 rounds", flush=True)
        churn_scale = args.churn_scale or args.scale
        results["churn_scale"] = churn_scale
        results["churn"] = await scenario_churn(args.dsn, churn_scale)
    save(Path(args.out), results)
    report(results)


def save(path: Path, results: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1, default=str))


def report(r: dict[str, Any]) -> None:
    print(f"\nscale {r['scale']}, {r['server'][0].split(',')[0]}, autovacuum {r['server'][1]}")
    if "idle" in r:
        e = [x for run in r["idle"]["empty"] for x in run]
        d = [x for run in r["idle"]["delayed"] for x in run]
        print("| idle pickup | p50 ms | p95 ms | claim buffers | claim ms |")
        print("|---|---|---|---|---|")
        for k, v in (("empty", e), ("100k delayed", d)):
            ex = r["idle"]["explain"]["empty" if k == "empty" else "delayed"]
            print(
                f"| {k} | {pct(v, 0.5):.2f} | {pct(v, 0.95):.2f} | {ex['buffers']} "
                f"| {ex['execution_ms']:.2f} |"
            )
        print(
            f"| ratio | {pct(d, 0.5) / pct(e, 0.5):.2f}x | {pct(d, 0.95) / pct(e, 0.95):.2f}x | | |"
        )
    if "drain" in r:
        dr = r["drain"]
        empty = statistics.median(dr["empty"])
        print("| drain (1 proc x 10) | jobs/s | vs empty |")
        print("|---|---|---|")
        print(f"| 20k, empty table (median of {len(dr['empty'])}) | {empty:,.0f} | 1.00 |")
        dl = statistics.median(dr["delayed"])
        print(f"| 20k behind 100k delayed | {dl:,.0f} | {dl / empty:.2f} |")
        for k in ("start", "after_300k"):
            if k not in dr.get("big", {}):
                continue
            v = dr["big"][k]
            print(f"| 1M, 10 % delayed: {k} | {v:,.0f} | {v / empty:.2f} |")
        if "big" in dr:
            report_big(dr)
    if "purge" in r:
        p = r["purge"]
        idle = p["idle_before"] + p["idle_after"]
        print(
            f"| other queue pickup ({p['purged']:,} purged in {p['purge_s']:.1f} s) "
            "| p50 ms | p95 ms |"
        )
        print("|---|---|---|")
        print(f"| idle | {pct(idle, 0.5):.2f} | {pct(idle, 0.95):.2f} |")
        print(f"| during the pass | {pct(p['during'], 0.5):.2f} | {pct(p['during'], 0.95):.2f} |")
        for k in ("during_purge", "during_vacuum"):
            if p.get(k):
                print(f"| {k} ({len(p[k])}) | {pct(p[k], 0.5):.2f} | {pct(p[k], 0.95):.2f} |")
        print(f"| ratio | | {pct(p['during'], 0.95) / pct(idle, 0.95):.2f}x |")
    if "churn" in r:
        c = r["churn"]["rates"]
        print("churn rounds jobs/s: " + ", ".join(f"{x:,.0f}" for x in c))
        print(
            f"last / first: {c[-1] / c[0]:.2f}; table (live, dead, vacuums, autovacuums, "
            f"autovacuum): {r['churn']['table']}"
        )


def report_big(dr: dict[str, Any]) -> None:
    ex = dr["explain_big"]
    print(f"claim at 1M: {ex['buffers']} buffers, {ex['execution_ms']:.2f} ms")
    ob = dr["observe"]
    print(f"| at {ob['rows']:,} rows | median ms | p95 ms |")
    print("|---|---|---|")
    for k in ("select_1", "stats", "stats_one_queue", "ready_count", "maintain_nothing_due"):
        print(f"| {k} | {ob[k]['median_ms']:.2f} | {ob[k]['p95_ms']:.2f} |")
    print(
        f"first maintenance pass: {ob['first_maintain']['ms']:.0f} ms, "
        f"vacuumed {ob['first_maintain']['vacuumed']}"
    )


if __name__ == "__main__":
    asyncio.run(main())
