"""The worker registry: every running worker of this process, refreshed in the database.

One task per client writes every local worker's row in one statement every ``interval``
seconds; rows whose heartbeat is older than the time-to-live are gone (readers ignore them and
the refresh deletes them), so a SIGKILLed process disappears from the console by itself.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from insightdesk.shared.errors import QueueError
from insightdesk.shared.queue.tasks import cancel_and_wait

if TYPE_CHECKING:
    from insightdesk.shared.queue.store import PgStore

log = logging.getLogger(__name__)


class WorkerRegistry:
    def __init__(self, store: PgStore, *, interval: float = 5.0, ttl: float = 30.0) -> None:
        self.store = store
        self.interval = interval
        self.ttl = ttl
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self._entries: dict[uuid.UUID, tuple[str, int, datetime]] = {}
        self._task: asyncio.Task[None] | None = None

    async def add(self, queue: str, concurrency: int) -> uuid.UUID:
        """Record a started worker at once and keep its row fresh until :meth:`remove`."""
        worker_id = uuid.uuid4()
        self._entries[worker_id] = (queue, concurrency, datetime.now(UTC))
        try:
            await self.refresh()
        except QueueError as exc:
            log.warning("could not register worker of %s: %s", queue, exc)
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="worker-registry")
        return worker_id

    async def remove(self, *worker_ids: uuid.UUID) -> None:
        for worker_id in worker_ids:
            self._entries.pop(worker_id, None)
        if not self._entries and self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None
        try:
            await self.store.execute("deregister_workers", {"ids": list(worker_ids)})
        except QueueError as exc:
            log.warning("could not deregister workers: %s", exc)

    async def refresh(self) -> None:
        entries = dict(self._entries)
        if not entries:
            return
        params = {
            "host": self.host,
            "pid": self.pid,
            "ids": list(entries),
            "queues": [e[0] for e in entries.values()],
            "concurrencies": [e[1] for e in entries.values()],
            "started": [e[2] for e in entries.values()],
        }
        await self.store.execute("register_workers", params)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.refresh()
                await self.store.execute("expire_workers", {"ttl": self.ttl})
            except QueueError as exc:
                log.warning("worker registry refresh failed: %s", exc)
