"""Server CPU per job of the claim-and-complete cycle, schema variants interleaved.

One connection per variant database runs the engine's ``fetch`` statement in a loop (complete
the previous batch, claim the next 10) until the queue is empty, exactly as a consumer's claim
session does (generic plans, no seq/hash/merge joins), and reads its own backend's CPU time from
/proc before and after: no client, no network, no other backend in the figure. Rounds alternate
between the variants, each round refilling every database, so the machine's drift (2x within an
hour on these shared machines) hits every variant alike.

    uv run python bench/claim_cpu.py --variant v9= --variant notrig=notrig.sql --rounds 10

``--variant NAME=[SQLFILE][,STATEMENTFILE]``: a fresh database migrated by this checkout, then
SQLFILE run on it (e.g. ``ALTER TABLE queue.job DISABLE TRIGGER job_count_update``), and
STATEMENTFILE, if given, used instead of the engine's ``fetch`` (same parameters). The first
variant is the baseline of the ratios. ``--vacuum`` runs VACUUM ANALYZE after each fill (by
default the table is truncated and refilled unvacuumed, as in the peer harness).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import conninfo, sql

from insightdesk.shared.queue import QueueClient
from insightdesk.shared.queue.statements import statements

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results-2026-12-03" / "claim_cpu.json"
SESSION = (
    "SET plan_cache_mode = force_generic_plan; SET enable_seqscan = off;"
    " SET enable_hashjoin = off; SET enable_mergejoin = off; SET jit = off"
)


@dataclass
class Variant:
    name: str
    setup: str | None
    statement: bytes | None
    dbname: str = ""
    conn: Any = None
    pid: int = 0
    runs: list[float] = field(default_factory=list)


def backend_cpu(pid: int) -> float:
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def parse(spec: str) -> Variant:
    name, _, rest = spec.partition("=")
    setup, _, statement = rest.partition(",")
    if not name:
        raise SystemExit(f"--variant {spec!r}: want NAME=[SQLFILE][,STATEMENTFILE]")
    return Variant(
        name,
        Path(setup).read_text() if setup else None,
        Path(statement).read_text().replace("{schema}", '"queue"').encode() if statement else None,
    )


def dsn_for(admin: str, dbname: str) -> str:
    params = conninfo.conninfo_to_dict(admin)
    params["dbname"] = dbname
    return conninfo.make_conninfo("", **params)


async def drain(v: Variant, fetch: bytes, jobs: int, vacuum: bool) -> float:
    conn = v.conn
    await conn.execute("TRUNCATE queue.job")
    await conn.execute(
        "INSERT INTO queue.job (name, data) "
        "SELECT 'q', jsonb_build_object('i', g) FROM generate_series(1, %s) g",
        (jobs,),
    )
    if vacuum:
        await conn.execute("VACUUM ANALYZE queue.job")
    done: tuple[list[Any], list[Any]] = ([], [])
    n = 0
    before = backend_cpu(v.pid)
    while True:
        params = {
            "done_ids": done[0],
            "done_leases": done[1],
            "done_outputs": [None] * len(done[0]),
            "names": ["q"],
            "limits": [10],
            "default_heartbeat": 30.0,
        }
        cur = await conn.execute(v.statement or fetch, params, prepare=True)
        rows = await cur.fetchall()
        if not rows and not done[0]:
            break
        done = ([r[2] for r in rows], [r[4] for r in rows])  # id, lease
        n += len(rows)
    return (backend_cpu(v.pid) - before) / n * 1e6


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variant", action="append", required=True)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--jobs", type=int, default=3000)
    ap.add_argument("--vacuum", action="store_true")
    ap.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()
    variants = [parse(s) for s in args.variant]
    fetch = statements("queue")["fetch"].encode()
    async with await psycopg.AsyncConnection.connect(args.dsn, autocommit=True) as admin:
        try:
            for v in variants:
                v.dbname = f"bench_claimcpu_{uuid.uuid4().hex[:8]}"
                await admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(v.dbname)))
                dsn = dsn_for(args.dsn, v.dbname)
                async with QueueClient.connect(dsn) as client:
                    await client.create_queue("q")
                v.conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
                if v.setup:
                    await v.conn.execute(v.setup.encode())
                await v.conn.execute(SESSION)
                cur = await v.conn.execute("SELECT pg_backend_pid()")
                row = await cur.fetchone()
                assert row is not None
                v.pid = row[0]
            for r in range(args.rounds):
                for v in variants if r % 2 == 0 else variants[::-1]:
                    v.runs.append(await drain(v, fetch, args.jobs, args.vacuum))
                print(
                    f"round {r + 1}: " + "  ".join(f"{v.name} {v.runs[-1]:.0f}" for v in variants)
                )
        finally:
            for v in variants:
                if v.conn is not None:
                    await v.conn.close()
                if v.dbname:
                    await admin.execute(
                        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                            sql.Identifier(v.dbname)
                        )
                    )
    base = statistics.median(variants[0].runs)
    print(f"\n{'variant':>12} | server us/job (median) | ratio")
    for v in variants:
        m = statistics.median(v.runs)
        print(f"{v.name:>12} | {m:22.1f} | {m / base:.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "args": {k: str(x) for k, x in vars(args).items()},
                "runs": {v.name: v.runs for v in variants},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
