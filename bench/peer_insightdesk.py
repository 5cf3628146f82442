"""InsightDesk queue engine as a peer of ../shared/bench/harness.py (see bench/README.md).

Speaks the harness's line protocol through its ``peerlib`` (found beside the harness:
``$PEERLIB_DIR``, default ``<repo>/../shared/bench``). Run with the project's environment:

    harness.py --name insightdesk --cmd "<repo>/.venv/bin/python <repo>/bench/peer_insightdesk.py"

Peer options (--opt key=value):
  mode=engine     consume with the bare engine worker loop (default)
  mode=broker     consume through a PgBroker (FastStream) subscriber with a pydantic body
  batch=N         claim batch size (default: the concurrency)
  prefetch=N      claimed jobs held beyond the concurrency (default: the engine's, automatic;
                  handlers stay <= concurrency)
  poll=S          poll interval of the idle worker, seconds (default 2; NOTIFY wakes it sooner)
  supervise=0     run the worker without the process's duties (recovery, maintenance, history)
  vacuum=MODE     the maintenance leader's vacuum mode: auto (default), always, never
"""

from __future__ import annotations

import contextlib
import importlib.metadata as md
import logging
import os
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, os.environ.get("PEERLIB_DIR", str(HERE.parent.parent / "shared" / "bench")))
import peerlib  # noqa: E402
from pydantic import BaseModel  # noqa: E402

from insightdesk.shared.queue import Job, QueueClient  # noqa: E402
from insightdesk.shared.queue.broker import PgBroker  # noqa: E402

logging.basicConfig(level=logging.WARNING, stream=sys.stderr)


class Payload(BaseModel):
    i: int
    t: float | None = None


class InsightDeskPeer(peerlib.Adapter):  # type: ignore[misc]
    broker: PgBroker | None = None

    async def setup(self) -> dict[str, Any]:
        async with QueueClient.connect(self.args.dsn) as client:
            await client.create_queue(self.args.queue)
        return {
            "version": "insightdesk-shared "
            + md.version("insightdesk-shared")
            + ", psycopg "
            + md.version("psycopg")
            + ", python "
            + sys.version.split()[0],
            "pending_sql": "SELECT count(*) FROM queue.job WHERE state < 'completed'",
            "settings": {"mode": self.opts.get("mode", "engine"), **self.opts},
        }

    async def _open(self, max_size: int) -> QueueClient:
        self.stack = contextlib.AsyncExitStack()
        return await self.stack.enter_async_context(
            QueueClient.connect(
                self.args.dsn, min_size=min(2, max_size), max_size=max_size, migrate_schema=False
            )
        )

    async def open_producer(self) -> None:
        self.client = await self._open(self.args.inflight)

    async def enqueue_many(self, payloads: list[dict[str, Any]]) -> None:
        await self.client.send_many(self.args.queue, payloads)

    async def enqueue_one(self, payload: dict[str, Any]) -> None:
        await self.client.send(self.args.queue, payload)

    async def close_producer(self) -> None:
        await self.stack.aclose()

    def _prefetch(self) -> int | None:
        value = self.opts.get("prefetch")
        return None if value is None else int(value)

    async def open_worker(self, on_job: Any) -> None:
        mode = self.opts.get("mode", "engine")
        if mode not in {"engine", "broker"}:
            raise SystemExit(f"unknown mode {mode!r}")
        self.client = await self._open(4)
        vacuum = self.opts.get("vacuum", "auto")
        if vacuum not in {"auto", "always", "never"}:
            raise SystemExit(f"unknown vacuum mode {vacuum!r}")
        self.client.supervisor.vacuum = vacuum
        if mode == "broker":
            await self._open_broker(on_job)
            return

        async def handler(job: Job) -> None:
            on_job(job.data)

        self.handler = handler

    async def _open_broker(self, on_job: Any) -> None:
        c = self.args.concurrency
        broker = PgBroker(
            client=self.client, logger=None, poll_interval=float(self.opts.get("poll", "2"))
        )

        @broker.subscriber(
            self.args.queue,
            concurrency=c,
            max_records=int(self.opts.get("batch", c)),
            prefetch=self._prefetch(),
        )
        async def handle(body: Payload) -> None:
            on_job({"i": body.i} if body.t is None else {"i": body.i, "t": body.t})

        await broker.connect()
        self.broker = broker

    async def start_worker(self) -> None:
        if self.broker is not None:
            await self.broker.start()
            worker = self.broker.subscribers[0].worker  # type: ignore[attr-defined]
            self.task = worker.task
            return
        c = self.args.concurrency
        worker = await self.client.work(
            self.args.queue,
            self.handler,
            concurrency=c,
            batch_size=int(self.opts.get("batch", c)),
            prefetch=self._prefetch(),
            poll_interval=float(self.opts.get("poll", "2")),
            supervise=self.opts.get("supervise", "1") != "0",
        )
        self.task = worker.task

    async def stop_worker(self) -> None:
        if self.broker is not None:
            await self.broker.stop()
        await self.stack.aclose()


if __name__ == "__main__":
    peerlib.main(InsightDeskPeer)
