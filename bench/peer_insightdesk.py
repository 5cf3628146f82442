"""InsightDesk queue engine as a peer of ../shared/bench/harness.py (see bench/README.md).

Speaks the harness's line protocol through its ``peerlib`` (found beside the harness:
``$PEERLIB_DIR``, default ``<repo>/../shared/bench``). Run with the project's environment:

    harness.py --name insightdesk --cmd "<repo>/.venv/bin/python <repo>/bench/peer_insightdesk.py"

Peer options (--opt key=value):
  mode=engine     consume with the bare engine worker loop (default)
  batch=N         claim batch size (default: the concurrency)
  poll=S          poll interval of the idle worker, seconds (default 2; NOTIFY wakes it sooner)
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

from insightdesk.shared.queue import Job, QueueClient  # noqa: E402

logging.basicConfig(level=logging.WARNING, stream=sys.stderr)


class InsightDeskPeer(peerlib.Adapter):  # type: ignore[misc]
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

    async def open_worker(self, on_job: Any) -> None:
        mode = self.opts.get("mode", "engine")
        if mode != "engine":
            raise SystemExit(f"unknown mode {mode!r}")
        self.client = await self._open(4)

        async def handler(job: Job) -> None:
            on_job(job.data)

        self.handler = handler

    async def start_worker(self) -> None:
        c = self.args.concurrency
        worker = await self.client.work(
            self.args.queue,
            self.handler,
            concurrency=c,
            batch_size=int(self.opts.get("batch", c)),
            poll_interval=float(self.opts.get("poll", "2")),
        )
        self.task = worker.task

    async def stop_worker(self) -> None:
        await self.stack.aclose()


if __name__ == "__main__":
    peerlib.main(InsightDeskPeer)
