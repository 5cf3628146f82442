"""``insightdesk-queue demo|migrate|stats|maintain``: a subcommand is required (``demo`` runs a
short demo of the engine; the others migrate, show stats, run maintenance once); operator
commands (jobs, queues, workers, console) live in :mod:`.operator_cli`.

The database is ``DATABASE_URL`` when set; otherwise an embedded PostgreSQL is started in
``.local/postgres`` (pgserver) so the demo runs on a machine with no PostgreSQL installed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from insightdesk.shared.db import EmbeddedPostgres, dsn_from_env, start_embedded
from insightdesk.shared.errors import InsightDeskError
from insightdesk.shared.queue import operator_cli
from insightdesk.shared.queue.client import QueueClient
from insightdesk.shared.queue.jobs import Job, QueueStats
from insightdesk.shared.queue.options import JobOptions, QueueOptions
from insightdesk.shared.queue.outcomes import Reject

log = logging.getLogger("insightdesk.queue")


@contextlib.contextmanager
def database(data_dir: Path) -> Iterator[str]:
    dsn = dsn_from_env()
    if dsn is not None:
        yield dsn
        return
    embedded: EmbeddedPostgres = start_embedded(data_dir)
    print(f"DATABASE_URL is unset: using an embedded PostgreSQL in {data_dir}")
    try:
        yield embedded.dsn
    finally:
        embedded.stop()


def format_stats(rows: Sequence[QueueStats]) -> str:
    header = ("queue", "created", "retry", "active", "completed", "failed", "ready", "oldest(s)")
    lines = [header] + [
        (
            s.name,
            str(s.created),
            str(s.retry),
            str(s.active),
            str(s.completed),
            str(s.failed),
            str(s.ready),
            f"{s.oldest_ready_age:.1f}",
        )
        for s in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)) for line in lines
    )


async def demo(dsn: str, jobs: int) -> None:
    """Send, work and report jobs: bulk, delayed, an event fan-out and a dead letter."""
    async with QueueClient.connect(dsn) as client:
        await client.create_queue("demo-dead")
        await client.create_queue("demo", QueueOptions(retry_limit=1, dead_letter="demo-dead"))
        await client.create_queue("demo-audit")
        await client.subscribe("demo.finished", "demo-audit")

        started = time.perf_counter()
        await client.send_many("demo", [{"n": n} for n in range(jobs)])
        sent_in = time.perf_counter() - started
        print(f"sent {jobs} jobs in one call ({jobs / sent_in:,.0f} jobs/s)")
        await client.send("demo", {"n": "delayed"}, JobOptions(start_after=1.0))
        await client.send("demo", {"n": "poison"})
        total = jobs + 2
        done = asyncio.Event()
        handled = 0

        async def handle(job: Job) -> dict[str, object]:
            nonlocal handled
            if job.data["n"] == "poison":
                handled += 1
                if handled >= total:
                    done.set()
                raise Reject("a poison message goes straight to the dead-letter queue")
            handled += 1
            if handled >= total:
                done.set()
            return {"doubled": job.data["n"] * 2 if isinstance(job.data["n"], int) else None}

        async def audit(job: Job) -> None:
            log.info("audit saw %s", job.data)

        started = time.perf_counter()
        await client.work("demo", handle, concurrency=10)
        await client.work("demo-audit", audit)
        await asyncio.wait_for(done.wait(), timeout=60)
        worked_in = time.perf_counter() - started
        print(f"worked {total} jobs in {worked_in:.2f}s (one was delayed by 1s)")
        fanned = await client.publish("demo.finished", {"jobs": total})
        print(f"published demo.finished to {len(fanned)} subscribed queue(s)")
        await asyncio.sleep(0.3)
        print()
        print(format_stats(await client.stats()))
        print()
        print("KEDA scaler query for 'demo':", client.scaler_query("demo"))


async def show_stats(dsn: str) -> None:
    async with QueueClient.connect(dsn) as client:
        print(format_stats(await client.stats()))


async def migrate_only(dsn: str) -> None:
    async with QueueClient.connect(dsn, migrate_schema=False) as client:
        print(f"queue schema at version {await client.migrate()}")


async def maintain(dsn: str) -> None:
    async with QueueClient.connect(dsn) as client:
        result = await client.supervisor.maintain()
        recovered = await client.supervisor.recover()
        print(f"purged {result.purged}, expired {result.expired}, recovered {len(recovered)}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="insightdesk-queue", description=__doc__)
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("INSIGHTDESK_DATA_DIR", ".local/postgres")),
        help="where the embedded PostgreSQL keeps its data when DATABASE_URL is unset",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo_cmd = sub.add_parser("demo", help="send, work and report jobs")
    demo_cmd.add_argument("--jobs", type=int, default=5000)
    sub.add_parser("migrate", help="install or upgrade the queue schema")
    sub.add_parser("stats", help="job counts per queue and state")
    sub.add_parser("maintain", help="run retention and crash recovery once")
    operator_cli.add_commands(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    try:
        with database(args.data_dir) as dsn:
            if args.command == "demo":
                if args.jobs < 1:
                    parser.error("--jobs must be >= 1")
                asyncio.run(demo(dsn, args.jobs))
            elif args.command == "migrate":
                asyncio.run(migrate_only(dsn))
            elif args.command == "stats":
                asyncio.run(show_stats(dsn))
            elif args.command in operator_cli.COMMANDS:
                operator_cli.main_loop(args, dsn)
            else:
                asyncio.run(maintain(dsn))
    except InsightDeskError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
