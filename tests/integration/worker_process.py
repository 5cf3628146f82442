"""A standalone queue worker process for the multi-process integration tests (not a test module).

Usage::

    python worker_process.py DSN QUEUE CONCURRENCY SLEEP HEARTBEAT [--recover-interval S]
        [--exit-in-handler] [--shutdown-timeout S] [--records-dsn DSN] [--stop-waits F,S]

Every job execution first records itself in the table ``executions(job_id, i, pid, at)`` (which
the test creates beforehand) through a pool of its own, then sleeps ``SLEEP`` seconds and returns
(with ``--exit-in-handler`` it raises ``SystemExit`` instead: a poison job). ``--records-dsn``
records through another DSN than the queue's (the queue's may go through a failing proxy);
``--stop-waits`` sets the engine's ``FLUSH_WAIT`` and ``STOP_WAIT`` (short, for outage tests).
The process prints ``READY`` once ``work()`` has started, and on SIGTERM (or SIGINT) stops the
worker gracefully with ``QueueClient.close()`` and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from typing import Any

from psycopg_pool import AsyncConnectionPool

import insightdesk.shared.queue.client as client_module
import insightdesk.shared.queue.consumer as consumer_module
import insightdesk.shared.queue.tasks as tasks_module
import insightdesk.shared.queue.worker as worker_module
from insightdesk.shared.queue import Job, QueueClient

RECORD_SQL = "INSERT INTO executions (job_id, i, pid, at) VALUES (%s, %s, %s, clock_timestamp())"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dsn")
    parser.add_argument("queue")
    parser.add_argument("concurrency", type=int)
    parser.add_argument("sleep", type=float, help="seconds each handler sleeps after recording")
    parser.add_argument("heartbeat", type=float, help="default_heartbeat passed to work()")
    parser.add_argument("--recover-interval", type=float, default=0.5)
    parser.add_argument("--poll-interval", type=float, default=0.5)
    parser.add_argument("--exit-in-handler", action="store_true")
    parser.add_argument("--shutdown-timeout", type=float, default=30.0)
    parser.add_argument("--records-dsn", default=None)
    parser.add_argument("--stop-waits", default=None, help="FLUSH_WAIT,STOP_WAIT in seconds")
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> int:
    pid = os.getpid()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    if args.stop_waits:
        flush_wait, stop_wait = (float(x) for x in args.stop_waits.split(","))
        consumer_module.FLUSH_WAIT = flush_wait
        for module in (tasks_module, worker_module, client_module):
            module.STOP_WAIT = stop_wait  # type: ignore[attr-defined]
    records: AsyncConnectionPool[Any] = AsyncConnectionPool(
        args.records_dsn or args.dsn,
        min_size=1,
        max_size=max(1, args.concurrency),
        kwargs={"autocommit": True},
        open=False,
    )
    await records.open(wait=True, timeout=30)
    try:
        async with QueueClient.connect(args.dsn, migrate_schema=False) as client:

            async def handler(job: Job) -> None:
                i = job.data.get("i") if isinstance(job.data, dict) else None
                async with records.connection() as conn:
                    await conn.execute(RECORD_SQL, (job.id, i, pid))
                await asyncio.sleep(args.sleep)
                if args.exit_in_handler:
                    sys.exit(3)

            client.supervisor.recover_interval = args.recover_interval
            await client.work(
                args.queue,
                handler,
                concurrency=args.concurrency,
                poll_interval=args.poll_interval,
                default_heartbeat=args.heartbeat,
                shutdown_timeout=args.shutdown_timeout,
            )
            print("READY", flush=True)
            await stop.wait()
            await client.close()
    finally:
        await records.close()
    return 0


def main() -> None:
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stderr,
        format=f"%(asctime)s [worker pid {os.getpid()}] %(levelname)s %(name)s: %(message)s",
    )
    sys.exit(asyncio.run(run(parse_args(sys.argv[1:]))))


if __name__ == "__main__":
    main()
