"""Per-process background duties: crash recovery and retention (cron runs in ``scheduler``).

Recovery is cheap (it reads only the few active jobs through a partial index) and safe to run
from every process at once (SKIP LOCKED), so every process runs it every few seconds: a job whose
worker was SIGKILLed is back in the queue within ``heartbeat + recover_interval`` seconds.
Retention purges are heavier, so only the process holding an advisory lock does them.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.rows import dict_row

from insightdesk.shared.queue.tasks import cancel_and_wait
from insightdesk.shared.queue.worker import DEFAULT_HEARTBEAT

if TYPE_CHECKING:
    from insightdesk.shared.queue.client import QueueClient

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MaintenanceResult:
    purged: int
    expired: int
    ran: bool


class Supervisor:
    def __init__(
        self,
        client: QueueClient,
        *,
        recover_interval: float = 2.0,
        maintenance_interval: float = 300.0,
        default_heartbeat: float = DEFAULT_HEARTBEAT,
        batch: int = 5000,
    ) -> None:
        self.client = client
        self.recover_interval = recover_interval
        self.maintenance_interval = maintenance_interval
        self.default_heartbeat = default_heartbeat
        self.batch = batch
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(
                    self._every(self.recover_interval, self.recover), name="recover"
                ),
                asyncio.create_task(
                    self._every(self.maintenance_interval, self.maintain), name="maintenance"
                ),
            ]

    async def stop(self) -> None:
        for task in self._tasks:
            await cancel_and_wait(task)
        self._tasks = []

    async def _every(self, interval: float, action: Any) -> None:
        while True:
            try:
                await action()
            except asyncio.CancelledError:
                raise
            except (psycopg.Error, OSError) as exc:
                log.warning("queue %s failed: %s", action.__name__, exc)
            await asyncio.sleep(interval)

    async def recover(self) -> list[tuple[Any, str]]:
        """Re-queue (or fail) active jobs whose heartbeat stopped or that passed expire_in."""
        async with self.client.pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                self.client.sql["recover"],
                {"default_heartbeat": self.default_heartbeat, "limit": self.batch},
            )
            rows = await cur.fetchall()
        if rows:
            log.warning("recovered %d stalled job(s)", len(rows))
        return [(r["id"], r["state"]) for r in rows]

    async def maintain(self) -> MaintenanceResult:
        """Purge finished jobs past delete_after and fail queued jobs past retention.

        Runs in one process at a time (advisory lock); the others return ``ran=False``.
        """
        purged = expired = 0
        async with self.client.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))",
                (f"insightdesk.queue.maintain:{self.client.schema}",),
            )
            row = await cur.fetchone()
            if not row or not row[0]:
                return MaintenanceResult(0, 0, ran=False)
            try:
                while True:
                    cur = await conn.execute(
                        self.client.sql["purge_finished"], {"limit": self.batch}
                    )
                    n = cur.rowcount
                    purged += n
                    if n < self.batch:
                        break
                while True:
                    cur = await conn.execute(
                        self.client.sql["expire_queued"], {"limit": self.batch}
                    )
                    n = cur.rowcount
                    expired += n
                    if n < self.batch:
                        break
            finally:
                await conn.execute(
                    "SELECT pg_advisory_unlock(hashtextextended(%s, 0))",
                    (f"insightdesk.queue.maintain:{self.client.schema}",),
                )
        if purged or expired:
            log.info("maintenance purged %d and expired %d job(s)", purged, expired)
        return MaintenanceResult(purged, expired, ran=True)
