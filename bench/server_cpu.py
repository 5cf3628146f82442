"""Server and client CPU per job of a multi-process drain, engine checkouts side by side.

The peer harness's B2 (2 processes x concurrency 10 draining 20k no-op jobs) is CPU-bound on a
2-core machine: the worker processes and their PostgreSQL backends share the cores, so a job's
server-side cost shows up directly in throughput. This bench runs that drain for each given
checkout of the engine, alternating, each run in a fresh database, and measures:

  wall     seconds from the workers' start to the last job done
  server   CPU of the PostgreSQL server's processes (the postmaster and every child, reaped or
           live, read from /proc; needs a local server and its pid file), microseconds per job
  client   CPU of the worker processes (their own rusage), microseconds per job

    uv run python bench/server_cpu.py --engine old=/work/wt/old --engine new=. --pairs 4

Each ``--engine NAME=PATH[,SQLFILE]`` is a checkout with its own ``.venv`` (``uv sync`` there):
workers run with that checkout's interpreter and code. SQLFILE, if given, runs after the schema
is migrated and filled (to try a schema change, e.g. a dropped index, without a checkout).
The table shows medians and each engine's ratio to the first. The server figure includes
whatever else the server did meanwhile (other databases' sessions); run it on a quiet server
and compare alternating pairs only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from psycopg import conninfo, sql

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results-2026-12-03" / "server_cpu.json"

# Runs inside a worker subprocess with the checkout's interpreter. Prints "n <count>" of jobs
# done every 20 ms while it changes, and "cpu <seconds>" when stdin closes. Connects, prints
# "ready", and starts its worker only at the "go" line, so the measurement leaves out
# interpreter start-up.
WORKER = r"""
import asyncio, resource, sys
from insightdesk.shared.queue import QueueClient

async def main(dsn, queue, concurrency):
    done = 0
    async def handler(job):
        nonlocal done
        done += 1
    async def report():
        said = 0
        while True:
            await asyncio.sleep(0.02)
            if done != said:
                said = done
                print("n", done, flush=True)
    loop = asyncio.get_running_loop()
    async with QueueClient.connect(dsn, min_size=2, max_size=4, migrate_schema=False) as client:
        print("ready", flush=True)
        await loop.run_in_executor(None, sys.stdin.readline)
        reporter = asyncio.create_task(report())
        worker = await client.work(queue, handler, concurrency=concurrency,
                                   batch_size=concurrency, poll_interval=2.0)
        await loop.run_in_executor(None, sys.stdin.read)
        reporter.cancel()
        await worker.stop()
    print("n", done, flush=True)
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print("cpu", ru.ru_utime + ru.ru_stime, flush=True)

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""

SETUP = r"""
import asyncio, sys
from insightdesk.shared.queue import QueueClient

async def main(dsn, queue, n):
    async with QueueClient.connect(dsn) as client:
        await client.create_queue(queue)
        for start in range(0, n, 5000):
            await client.send_many(queue, [{"i": i} for i in range(start, min(n, start + 5000))])

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


def server_pid(pidfile: Path) -> int:
    return int(pidfile.read_text().split()[0])


def _ticks(fields: list[str], children: bool) -> int:
    # /proc/<pid>/stat after the command name: utime=11 stime=12 cutime=13 cstime=14 (0-based
    # from the state field at index 0)
    own = int(fields[11]) + int(fields[12])
    return own + (int(fields[13]) + int(fields[14]) if children else 0)


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()


def server_cpu(pid: int) -> float:
    """CPU seconds of the postmaster, its reaped children and its live children."""
    hz = os.sysconf("SC_CLK_TCK")
    fields = _stat(pid)
    if fields is None:
        raise SystemExit(f"no server process {pid}")
    total = _ticks(fields, children=True)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        child = _stat(int(entry.name))
        if child is not None and int(child[1]) == pid:
            total += _ticks(child, children=True)
    return total / hz


@contextlib.asynccontextmanager
async def fresh_db(admin: str) -> Any:
    name = f"bench_srvcpu_{uuid.uuid4().hex[:8]}"
    async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
        await conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    params = conninfo.conninfo_to_dict(admin)
    params["dbname"] = name
    try:
        yield conninfo.make_conninfo("", **params)
    finally:
        async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
            await conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


async def run_once(
    python: str,
    extra: str | None,
    vacuum: bool,
    admin: str,
    pid: int,
    jobs: int,
    procs: int,
    concurrency: int,
) -> dict[str, float]:
    queue = "srvcpu"
    async with fresh_db(admin) as dsn:
        setup = await asyncio.create_subprocess_exec(python, "-c", SETUP, dsn, queue, str(jobs))
        if await asyncio.wait_for(setup.wait(), 300) != 0:
            raise SystemExit("setup failed")
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            if extra:
                await conn.execute(extra.encode())
            if vacuum:
                await conn.execute("VACUUM ANALYZE queue.job")
        workers = [
            await asyncio.create_subprocess_exec(
                python,
                "-c",
                WORKER,
                dsn,
                queue,
                str(concurrency),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
            for _ in range(procs)
        ]
        counts = [0] * procs
        cpu = [0.0] * procs
        ready = [asyncio.Event() for _ in range(procs)]
        all_done = asyncio.Event()

        async def read(i: int, proc: asyncio.subprocess.Process) -> None:
            assert proc.stdout is not None
            async for line in proc.stdout:
                kind, _, value = line.decode().strip().partition(" ")
                if kind == "ready":
                    ready[i].set()
                elif kind == "n":
                    counts[i] = int(value)
                    if sum(counts) >= jobs:
                        all_done.set()
                elif kind == "cpu":
                    cpu[i] = float(value)

        readers = [asyncio.create_task(read(i, p)) for i, p in enumerate(workers)]
        try:
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in ready)), 60)
            s0, t0 = server_cpu(pid), time.perf_counter()
            for p in workers:
                assert p.stdin is not None
                p.stdin.write(b"go\n")
                await p.stdin.drain()
            await asyncio.wait_for(all_done.wait(), 600)
            wall = time.perf_counter() - t0
            s1 = server_cpu(pid)
        finally:
            for p in workers:
                if p.stdin is not None:
                    p.stdin.close()
            for p in workers:
                try:
                    await asyncio.wait_for(p.wait(), 30)
                except TimeoutError:
                    p.kill()
            await asyncio.gather(*readers, return_exceptions=True)
    return {
        "wall_s": wall,
        "jobs_per_s": jobs / wall,
        "server_us_per_job": (s1 - s0) / jobs * 1e6,
        "client_us_per_job": sum(cpu) / jobs * 1e6,
    }


def parse_engines(specs: list[str]) -> list[tuple[str, str, str | None]]:
    """(name, interpreter, SQL to run after the fill or None) per ``NAME=CHECKOUT[,SQLFILE]``."""
    engines: list[tuple[str, str, str | None]] = []
    for spec in specs:
        name, _, rest = spec.partition("=")
        path, _, extra = rest.partition(",")
        python = Path(path).resolve() / ".venv" / "bin" / "python"
        if not name or not python.exists() or (extra and not Path(extra).is_file()):
            raise SystemExit(f"--engine {spec!r}: want NAME=CHECKOUT[,SQLFILE] with CHECKOUT/.venv")
        engines.append((name, str(python), Path(extra).read_text() if extra else None))
    return engines


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", action="append", required=True, help="NAME=CHECKOUT")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument(
        "--vacuum",
        action="store_true",
        help="VACUUM ANALYZE the filled table before the drain (the peer harness does not)",
    )
    parser.add_argument("--pidfile", default="/var/run/postgresql/15-main.pid")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    engines = parse_engines(args.engine)
    pid = server_pid(Path(args.pidfile))
    runs: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in engines}
    for pair in range(args.pairs):
        order = engines if pair % 2 == 0 else engines[::-1]
        for name, python, extra in order:
            r = await run_once(
                python, extra, args.vacuum, args.dsn, pid, args.jobs, args.procs, args.concurrency
            )
            runs[name].append(r)
            print(
                f"pair {pair + 1} {name:>8}: {r['jobs_per_s']:7.0f} jobs/s  server "
                f"{r['server_us_per_job']:5.0f} us/job  "
                f"client {r['client_us_per_job']:5.0f} us/job",
                flush=True,
            )
    keys = ["jobs_per_s", "server_us_per_job", "client_us_per_job"]
    medians = {n: {k: statistics.median(r[k] for r in rs) for k in keys} for n, rs in runs.items()}
    base = medians[engines[0][0]]
    head = ["engine", "jobs/s", "server us/job", "client us/job"]
    print(f"\n{head[0]:>8} | {head[1]:>8} | {head[2]:>13} | {head[3]:>13} | ratios")
    for name, m in medians.items():
        ratios = " ".join(f"{m[k] / base[k]:.2f}" for k in keys)
        print(
            f"{name:>8} | {m['jobs_per_s']:8.0f} | {m['server_us_per_job']:13.0f} | "
            f"{m['client_us_per_job']:13.0f} | {ratios}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {"args": {k: str(v) for k, v in vars(args).items()}, "runs": runs, "medians": medians},
            indent=2,
        )
    )
    print(f"\nwrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main())
