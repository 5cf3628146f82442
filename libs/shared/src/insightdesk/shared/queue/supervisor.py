"""Per-process background duties: crash recovery and retention.

Recovery is cheap (it reads only the few active jobs through a partial index) and safe to run
from every process at once (SKIP LOCKED), so every process runs it every few seconds: a job whose
worker was SIGKILLed is back in the queue within ``heartbeat + recover_interval`` seconds.
Retention purges are heavier, so only the process holding an advisory lock does them. The
supervisor receives the store; errors reach it already wrapped in the project's error tree.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from insightdesk.shared.errors import QueueError
from insightdesk.shared.queue.store import MaintenanceResult, PgStore
from insightdesk.shared.queue.tasks import cancel_and_wait
from insightdesk.shared.queue.worker import DEFAULT_HEARTBEAT

log = logging.getLogger(__name__)

__all__ = ["MaintenanceResult", "Supervisor"]


class Supervisor:
    def __init__(
        self,
        store: PgStore,
        *,
        recover_interval: float = 2.0,
        maintenance_interval: float = 300.0,
        default_heartbeat: float = DEFAULT_HEARTBEAT,
        batch: int = 5000,
    ) -> None:
        self.store = store
        self.recover_interval = recover_interval
        self.maintenance_interval = maintenance_interval
        self.default_heartbeat = default_heartbeat
        self.batch = batch
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(
                    self._every(lambda: self.recover_interval, self.recover), name="recover"
                ),
                asyncio.create_task(
                    self._every(lambda: self.maintenance_interval, self.maintain),
                    name="maintenance",
                ),
            ]

    async def stop(self) -> None:
        for task in self._tasks:
            await cancel_and_wait(task)
        self._tasks = []

    async def _every(
        self, interval: Callable[[], float], action: Callable[[], Awaitable[Any]]
    ) -> None:
        while True:
            try:
                await action()
            except asyncio.CancelledError:
                raise
            except (QueueError, OSError) as exc:
                log.warning("queue supervision failed: %s", exc)
            await asyncio.sleep(interval())

    async def recover(self) -> list[tuple[uuid.UUID, str]]:
        """Re-queue (or fail) active jobs whose heartbeat stopped or that passed expire_in."""
        rows = await self.store.recover(default_heartbeat=self.default_heartbeat, limit=self.batch)
        if rows:
            log.warning("recovered %d stalled job(s)", len(rows))
        return rows

    async def maintain(self) -> MaintenanceResult:
        """Purge finished jobs past delete_after and fail queued jobs past retention.

        Runs in one process at a time (advisory lock); the others return ``ran=False``.
        """
        result = await self.store.maintain(batch=self.batch)
        if result.purged or result.expired:
            log.info("maintenance purged %d and expired %d job(s)", result.purged, result.expired)
        return result
