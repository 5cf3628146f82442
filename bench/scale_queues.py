"""Many queues per process against one queue: connections, drain, idle cost, trickle pickup.

Baseline: one queue. Variant: 100 queues, each process serving all of them through one
``QueueClient.work_many`` call (one consumer loop). Both use 2 consumer processes with
concurrency 10 per queue, a no-op handler and the engine's defaults (poll 2 s, supervision on).
Rounds alternate baseline and variant, each in a fresh database:

* drain: 100,000 jobs (1 x 100,000 or 100 x 1,000) sent in bulk, then the processes start;
  clock from start until nothing is left; connections per process sampled from pg_stat_activity
  (application_name) during the drain.
* idle: after the drain, ``--idle`` seconds with nothing to do: transactions committed in the
  database (pg_stat_database.xact_commit, the coordinator's own two reads subtracted) per second
  per process, and each process's CPU seconds over the window.
* trickle: ``--rate`` jobs/s for ``--trickle`` seconds, round robin over the queues; pickup latency
  (handler start minus send time, same clock) p50/p95.

    uv run python bench/scale_queues.py --rounds 2 --out bench/results-2026-12-03/scale_queues.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from psycopg import conninfo, sql

from insightdesk.shared.queue import Job, QueueClient

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def _dsn(base: str, dbname: str, app: str | None = None) -> str:
    params = conninfo.conninfo_to_dict(base)
    params["dbname"] = dbname
    if app:
        params["application_name"] = app
    return conninfo.make_conninfo("", **params)


# ---------------------------------------------------------------------- consumer process


class StatementCounter:
    """Counts the statements this process sends (pg_stat_statements may be absent, and
    pg_stat_database's counters are flushed by backends only every few seconds)."""

    def __init__(self) -> None:
        self.count = 0
        original = psycopg.AsyncCursor.execute

        async def execute(cur: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return await original(cur, query, *args, **kwargs)

        psycopg.AsyncCursor.execute = execute  # type: ignore[method-assign,assignment]


async def consume(dsn: str, queues: list[str], concurrency: int) -> None:
    """Serve ``queues`` and answer the coordinator's commands on stdin (one per line)."""
    latencies: list[float] = []
    counter = StatementCounter()

    async def handler(job: Job) -> None:
        sent = job.data.get("t") if isinstance(job.data, dict) else None
        if sent is not None:
            latencies.append(time.time() - sent)

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    def reply(payload: Any) -> None:
        sys.stdout.write(json.dumps(payload) + "\n")
        sys.stdout.flush()

    async with QueueClient.connect(dsn, migrate_schema=False) as client:
        reply("ready")
        while line := (await reader.readline()).decode().strip():
            if line == "start":
                await client.work_many(dict.fromkeys(queues, handler), concurrency=concurrency)
                reply("started")
            elif line == "cpu":
                reply(time.process_time())
            elif line == "statements":
                reply(counter.count)
            elif line == "latencies":
                reply(latencies)
                latencies = []
            elif line == "stop":
                await client.close()
                reply("stopped")
                return


# ---------------------------------------------------------------------- coordinator


class Consumer:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def ask(self, command: str) -> Any:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(command.encode() + b"\n")
        await self.proc.stdin.drain()
        return json.loads(await self.proc.stdout.readline())


async def spawn(dsn: str, queues: list[str], concurrency: int) -> Consumer:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "consume",
        "--dsn",
        dsn,
        "--concurrency",
        str(concurrency),
        *queues,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    consumer = Consumer(proc)
    assert proc.stdout is not None
    assert json.loads(await proc.stdout.readline()) == "ready"
    return consumer


async def _value(conn: psycopg.AsyncConnection[Any], query: str, *args: Any) -> Any:
    cur = await conn.execute(query, args or None)
    row = await cur.fetchone()
    assert row is not None
    return row[0]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def scenario(args: argparse.Namespace, n_queues: int) -> dict[str, Any]:
    db = f"scale_{uuid.uuid4().hex[:10]}"
    async with await psycopg.AsyncConnection.connect(args.admin, autocommit=True) as admin:
        await admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
    queues = [f"q{i:03d}" for i in range(n_queues)]
    per_queue = args.jobs // n_queues
    apps = [f"scale_{db}_{p}" for p in range(args.procs)]
    try:
        async with QueueClient.connect(_dsn(args.admin, db), max_size=2) as client:
            for q in queues:
                await client.create_queue(q)
            for q in queues:
                await client.send_many(q, [{"i": i} for i in range(per_queue)])
        consumers = [
            await spawn(_dsn(args.admin, db, app), queues, args.concurrency) for app in apps
        ]
        async with await psycopg.AsyncConnection.connect(
            _dsn(args.admin, db), autocommit=True
        ) as mon:
            await mon.execute("CHECKPOINT")
            pending = "SELECT count(*) FROM queue.job WHERE state < 'completed'"
            conns_max = 0
            began = time.perf_counter()
            await asyncio.gather(*(c.ask("start") for c in consumers))
            while await _value(mon, pending):
                per_app = await _value(
                    mon,
                    "SELECT COALESCE(max(n), 0) FROM (SELECT count(*) AS n FROM pg_stat_activity "
                    "WHERE application_name = ANY(%s) GROUP BY application_name) c",
                    apps,
                )
                conns_max = max(conns_max, int(per_app))
                await asyncio.sleep(0.05)
            drain = time.perf_counter() - began
            # idle window (after the backends flushed the drain's statistics, ~10 s)
            await asyncio.sleep(args.settle)
            xact = "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
            cpu0 = [await c.ask("cpu") for c in consumers]
            st0 = [await c.ask("statements") for c in consumers]
            x0 = int(await _value(mon, xact))
            await asyncio.sleep(args.idle)
            x1 = int(await _value(mon, xact))
            st1 = [await c.ask("statements") for c in consumers]
            cpu1 = [await c.ask("cpu") for c in consumers]
            idle_xact = (x1 - x0 - 1) / args.idle / args.procs
            idle_stmts = sum(b - a for a, b in zip(st0, st1, strict=True)) / args.procs / args.idle
            idle_cpu = sum(b - a for a, b in zip(cpu0, cpu1, strict=True)) / args.procs / args.idle
            # trickle
            for c in consumers:
                await c.ask("latencies")
            async with QueueClient.connect(
                _dsn(args.admin, db), migrate_schema=False, max_size=2
            ) as producer:
                total = int(args.rate * args.trickle)
                start = time.perf_counter()
                for i in range(total):
                    delay = start + i / args.rate - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    await producer.send(queues[i % n_queues], {"i": i, "t": time.time()})
            await asyncio.sleep(1.0)
            lat: list[float] = []
            for c in consumers:
                lat.extend(await c.ask("latencies"))
            conns_after = int(
                await _value(
                    mon,
                    "SELECT COALESCE(max(n), 0) FROM (SELECT count(*) AS n FROM pg_stat_activity "
                    "WHERE application_name = ANY(%s) GROUP BY application_name) c",
                    apps,
                )
            )
        for c in consumers:
            await c.ask("stop")
            await c.proc.wait()
        return {
            "queues": n_queues,
            "jobs": per_queue * n_queues,
            "drain_s": drain,
            "drain_jobs_per_s": per_queue * n_queues / drain,
            "connections_per_process_max": max(conns_max, conns_after),
            "idle_statements_per_s_per_process": idle_stmts,
            "idle_xact_per_s_per_process": idle_xact,
            "idle_cpu_share_per_process": idle_cpu,
            "trickle_jobs": len(lat),
            "trickle_expected": int(args.rate * args.trickle),
            "trickle_p50_ms": _pct(lat, 0.5) * 1000,
            "trickle_p95_ms": _pct(lat, 0.95) * 1000,
        }
    finally:
        async with await psycopg.AsyncConnection.connect(args.admin, autocommit=True) as admin:
            await admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db))
            )


async def coordinate(args: argparse.Namespace) -> None:
    results: dict[str, list[dict[str, Any]]] = {"one_queue": [], "many_queues": []}
    for r in range(args.rounds):
        for name, n in (("one_queue", 1), ("many_queues", args.queues)):
            res = await scenario(args, n)
            res["round"] = r + 1
            results[name].append(res)
            print(f"round {r + 1} {name}: {json.dumps(res)}", file=sys.stderr)

    def med(name: str, key: str) -> float:
        return float(statistics.median(x[key] for x in results[name]))

    rows = [
        ("drain jobs/s", "drain_jobs_per_s", "≥ 1.0x"),
        ("connections / process (max)", "connections_per_process_max", "≤ 5"),
        ("idle statements/s / process (own count)", "idle_statements_per_s_per_process", "≤ 2x"),
        ("idle commits/s / process (pg_stat_database)", "idle_xact_per_s_per_process", ""),
        ("idle CPU share / process", "idle_cpu_share_per_process", "≤ 2x"),
        ("trickle pickup p50 ms", "trickle_p50_ms", ""),
        ("trickle pickup p95 ms", "trickle_p95_ms", "≤ 1.5x"),
    ]
    print(
        f"\n{args.procs} processes x concurrency {args.concurrency}/queue, {args.jobs} jobs, "
        f"{args.rounds} alternating rounds (medians)\n"
    )
    print(f"| metric | 1 queue | {args.queues} queues | ratio | target |")
    print("|---|---|---|---|---|")
    summary: dict[str, Any] = {}
    for label, key, target in rows:
        base, var = med("one_queue", key), med("many_queues", key)
        ratio = var / base if base else float("nan")
        summary[key] = {"one_queue": base, "many_queues": var, "ratio": ratio}
        print(f"| {label} | {base:.4g} | {var:.4g} | {ratio:.2f} | {target} |")
    if args.out:
        document = {"args": vars(args), "summary": summary, "runs": results}
        _write(Path(args.out), json.dumps(document, indent=2))


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="role")
    run = sub.add_parser("run")
    run.add_argument("--admin", default=ADMIN)
    run.add_argument("--rounds", type=int, default=2)
    run.add_argument("--queues", type=int, default=100)
    run.add_argument("--jobs", type=int, default=100_000)
    run.add_argument("--procs", type=int, default=2)
    run.add_argument("--concurrency", type=int, default=10)
    run.add_argument("--idle", type=float, default=10.0)
    run.add_argument("--settle", type=float, default=12.0)
    run.add_argument("--rate", type=float, default=50.0)
    run.add_argument("--trickle", type=float, default=10.0)
    run.add_argument("--out")
    con = sub.add_parser("consume")
    con.add_argument("--dsn", required=True)
    con.add_argument("--concurrency", type=int, default=10)
    con.add_argument("queues", nargs="+")
    args = parser.parse_args(sys.argv[1:] if len(sys.argv) > 1 else ["run"])
    if args.role == "consume":
        asyncio.run(consume(args.dsn, args.queues, args.concurrency))
    else:
        asyncio.run(coordinate(args))


if __name__ == "__main__":
    main()
