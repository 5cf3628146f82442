"""Peers on a delayed backlog: 20k ready jobs drained alone vs behind 100k delayed ones (issue 7).

Drives the peer scripts of ``../shared/bench`` through its harness (same line protocol, same
drain phase: 1 worker process, concurrency 10, clock until the ready jobs are done). Before the
20k ready jobs are enqueued (phase A, the peer's bulk API), the "delayed" variant seeds 100k jobs
due in an hour: through our client's API for insightdesk, by SQL into the peer's own job table
for pg-boss and pgqueuer (the claim path is what is measured). The drain clock stops when only
the delayed jobs are left. Runs alternate (peer by peer, alone/delayed, then delayed/alone).

    uv run python bench/peer_delayed.py --bench $B [--peers insightdesk,pgboss,pgqueuer] [--runs 2]

``$B`` is the peers' scratch folder (``../shared/bench/README.md``: harness/, pgboss/, pgqueuer/).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from insightdesk.shared.queue import JobOptions, QueueClient

HERE = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("PEERLIB_DIR", str(HERE.parent.parent.parent / "shared" / "bench")))
if not SHARED.is_dir():
    SHARED = HERE.parent.parent / "shared" / "bench"
sys.path.insert(0, str(SHARED))
import harness  # type: ignore[import-not-found]  # noqa: E402

SEED_SQL = {
    "pgboss": "INSERT INTO pgboss.job (name, data, start_after) "
    "SELECT %(queue)s, jsonb_build_object('i', g), now() + interval '1 hour' "
    "FROM generate_series(1, %(n)s) g",
    "pgqueuer": "INSERT INTO pgqueuer (priority, entrypoint, payload, execute_after, status) "
    "SELECT 0, %(queue)s, convert_to(jsonb_build_object('i', g)::text, 'UTF8'), "
    "now() + interval '1 hour', 'queued' FROM generate_series(1, %(n)s) g",
}


def peer_cmd(peer: str, bench: Path) -> str:
    if peer == "insightdesk":
        return f"{sys.executable} {HERE / 'peer_insightdesk.py'}"
    if peer == "pgqueuer":
        return f"{bench / 'pgqueuer/venv/bin/python'} {SHARED / 'peer_pgqueuer.py'}"
    if peer == "pgboss":
        return f"{os.environ.get('NODE', 'node')} {SHARED / 'peer_pgboss.mjs'}"
    raise SystemExit(f"unknown peer {peer}")


async def seed(peer: str, dsn: str, queue: str, n: int) -> None:
    if peer == "insightdesk":
        async with QueueClient.connect(dsn, migrate_schema=False) as client:
            later = JobOptions(start_after=3600)
            for start in range(0, n, 5000):
                await client.send_many(queue, [{"i": i} for i in range(start, start + 5000)], later)
    else:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            await conn.execute(SEED_SQL[peer].encode(), {"queue": queue, "n": n})
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute("ANALYZE")


async def one_run(args: argparse.Namespace, peer: str, delayed: int, label: str) -> dict[str, Any]:
    hargs = argparse.Namespace(
        name=f"delayed_{peer}",
        cmd=peer_cmd(peer, Path(args.bench)),
        opt=[],
        admin_dsn=args.admin_dsn,
        base_dsn=args.base_dsn,
        logdir=os.path.join(tempfile.gettempdir(), "peer-delayed-logs"),
        queue="bench",
        n=args.n,
        chunk=1000,
        concurrency=10,
        drain_timeout=600.0,
        keep_db=False,
    )
    b: Any = harness.Bench(hargs)
    db = f"bench_delayed_{peer}_{label}"
    await b.admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    await b.admin(f'CREATE DATABASE "{db}"')
    dsn = f"{args.base_dsn.rstrip('/')}/{db}"
    try:
        s = await b.proc("setup", "setup", dsn)
        info = json.loads(await s.expect("SETUP", timeout=120))
        await s.finish()
        if delayed:
            await seed(peer, dsn, "bench", delayed)
        # the drain clock stops when only the delayed jobs are left
        b.pending_sql = f"SELECT ({info['pending_sql']}) - {delayed}"
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            await b.checkpoint(conn)
            enq = await b.phase_enqueue(dsn, 0)
            await b.checkpoint(conn)
            drain = await b.phase_drain(dsn, conn, 1)
        return {"peer": info.get("version"), "delayed": delayed, "A": enq, "B1": drain}
    finally:
        await b.admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


async def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--bench", default=os.environ.get("BENCH", str(Path.home() / "peerbench")))
    ap.add_argument("--peers", default="insightdesk,pgboss,pgqueuer")
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--delayed", type=int, default=100_000)
    ap.add_argument("--admin-dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--base-dsn", default="postgresql://postgres@127.0.0.1:5432")
    ap.add_argument("--out", default=str(HERE / "results-2026-12-03" / "peer_delayed.json"))
    args = ap.parse_args()
    results: dict[str, dict[str, list[Any]]] = {}
    for r in range(args.runs):
        for peer in args.peers.split(","):
            order = (0, args.delayed) if r % 2 == 0 else (args.delayed, 0)
            for delayed in order:
                res = await one_run(args, peer, delayed, f"r{r}_{delayed}")
                key = "delayed" if delayed else "alone"
                results.setdefault(peer, {}).setdefault(key, []).append(res)
                rate = res["B1"]["jobs_per_s"]
                print(f"  run {r + 1} {peer:12} {key:8} drain {rate or 0:,.0f} jobs/s", flush=True)
    save(Path(args.out), results)
    print(
        f"\n| peer | {args.n // 1000}k alone jobs/s "
        f"| behind {args.delayed // 1000}k delayed | ratio |"
    )
    print("|---|---|---|---|")
    for peer, kinds in results.items():
        med = {
            k: statistics.median(x["B1"]["jobs_per_s"] or 0 for x in v) for k, v in kinds.items()
        }
        ratio = med["delayed"] / med["alone"]
        print(f"| {peer} | {med['alone']:,.0f} | {med['delayed']:,.0f} | {ratio:.2f} |")


def save(out: Path, results: dict[str, dict[str, list[Any]]]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    out.write_text(json.dumps({"at": stamp, "results": results}, indent=1))


if __name__ == "__main__":
    asyncio.run(main())
