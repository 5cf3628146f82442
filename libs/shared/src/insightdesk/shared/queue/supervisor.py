"""Per-process background duties: crash recovery and retention.

Recovery is cheap (it reads only the few active jobs through a partial index) and safe to run
from every process at once (SKIP LOCKED), so every process runs it every few seconds: a job whose
worker was SIGKILLed is back in the queue within ``heartbeat + recover_interval`` seconds.
Retention purges are heavier, so only the process holding an advisory lock does them. They find
their work through indexes (a pass with nothing due is a few index probes), delete in short
batches with a pause between them so other queues' claims keep their latency, fold the counter
rows of ended connections, and VACUUM/ANALYZE the engine's tables when dead row versions pile up
on a server whose autovacuum is off (``vacuum="auto"``). A process's first retention pass runs
half to one interval after it starts (the leader's lock is not contended at every deploy, and
the workers' first seconds are theirs).

The supervisor holds the policy (intervals, batch size, pacing, when to vacuum); the store runs
the statements and hands back errors already wrapped in the project's error tree. Each duty is
a loop that survives any failure (logged, retried after a capped backoff, see
:mod:`~insightdesk.shared.queue.tasks`); its tasks are watched by the client's
:class:`~insightdesk.shared.queue.tasks.Loops`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from insightdesk.shared.queue.history import record_history
from insightdesk.shared.queue.store import MaintenanceResult, PgMaintenance, PgStore
from insightdesk.shared.queue.tasks import Loops, cancel_and_wait, every
from insightdesk.shared.queue.worker import DEFAULT_HEARTBEAT

log = logging.getLogger(__name__)

__all__ = ["VACUUM_SCALE", "VACUUM_THRESHOLD", "MaintenanceResult", "Supervisor", "VacuumMode"]

VacuumMode = Literal["auto", "always", "never"]
"""When the maintenance leader vacuums the engine's tables: ``auto`` only where the server's
autovacuum is off, ``always`` also where it is on, ``never`` leaves it to the server."""

# Vacuum a table once its dead row versions exceed this many plus a share of its live rows.
VACUUM_THRESHOLD = 20_000
VACUUM_SCALE = 0.1


class Supervisor:
    def __init__(
        self,
        store: PgStore,
        *,
        recover_interval: float = 2.0,
        maintenance_interval: float = 15.0,
        default_heartbeat: float = DEFAULT_HEARTBEAT,
        batch: int = 500,
        pace: float = 2.0,
        recover_limit: int = 2000,
        vacuum: VacuumMode = "auto",
        loops: Loops | None = None,
    ) -> None:
        self.store = store
        self.loops = Loops() if loops is None else loops
        self.backoff_first = 0.5  # first retry delay after a failed pass (doubling, capped)
        self.recover_interval = recover_interval
        self.maintenance_interval = maintenance_interval
        self.default_heartbeat = default_heartbeat
        # Purge and expiry delete ``batch`` rows per transaction and then pause ``pace`` times
        # as long as the batch took: a third of a core at most, in slices short enough that
        # another queue's claim waits behind one for a few milliseconds (measured in
        # bench/scale_tables.py: 2,000 rows at pace 1 raised other queues' pickup p95 2.4x
        # during a 1M-row purge, 500 at pace 2 by 1.3x, at half the purge rate).
        self.batch = batch
        self.pace = pace
        self.recover_limit = recover_limit  # stalled jobs re-queued per recovery pass
        self.vacuum = vacuum
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        if not self._tasks:
            spawn = self.loops.spawn
            self._tasks = [
                spawn(
                    "recover", self._every("recover", lambda: self.recover_interval, self.recover)
                ),
                # the first pass one interval after start, with jitter: processes started
                # together (a deploy) do not all queue for the leader's lock at once, and a
                # process's first seconds go to its workers
                spawn(
                    "maintenance",
                    self._every(
                        "maintenance",
                        lambda: self.maintenance_interval,
                        self.maintain,
                        delay=self.maintenance_interval * random.uniform(0.5, 1.0),
                    ),
                ),
                spawn("history", record_history(self.store)),
            ]

    async def stop(self) -> None:
        """Cancel the duties together; bounded even if the driver swallows a cancellation."""
        tasks, self._tasks = self._tasks, []
        await asyncio.gather(*(cancel_and_wait(task) for task in tasks))

    async def _every(
        self,
        name: str,
        interval: Callable[[], float],
        action: Callable[[], Awaitable[Any]],
        *,
        delay: float = 0.0,
    ) -> None:
        await every(
            f"queue {name}", interval, action, logger=log, first=self.backoff_first, delay=delay
        )

    async def recover(self) -> list[tuple[uuid.UUID, str]]:
        """Re-queue (or fail) active jobs whose heartbeat stopped or that passed expire_in."""
        rows = await self.store.recover(
            default_heartbeat=self.default_heartbeat, limit=self.recover_limit
        )
        if rows:
            log.warning("recovered %d stalled job(s)", len(rows))
        return rows

    async def maintain(self) -> MaintenanceResult:
        """Purge finished jobs past delete_after, fail queued jobs past retention, fold counters,
        and vacuum the engine's tables when they need it.

        Runs in one process at a time (advisory lock); the others return ``ran=False``. Each
        batch is its own short transaction (the pool's connections are autocommit).
        """
        async with self.store.maintenance() as session:
            if session is None:
                return MaintenanceResult(0, 0, ran=False)
            purged = await self._batches(session.purge)
            expired = await self._batches(session.expire)
            await session.fold_counters()
            # after a purge or expiry the dead rows are off the claim path: vacuum at a pace that
            # leaves other queues' latency alone; dead claim-index entries (claims and
            # completions) slow every claim until removed: vacuum them at full speed
            vacuumed = await self._vacuum(session, paced=bool(purged or expired))
        if purged or expired or vacuumed:
            log.info(
                "maintenance purged %d and expired %d job(s), vacuumed %s",
                purged,
                expired,
                ", ".join(vacuumed) or "nothing",
            )
        return MaintenanceResult(purged, expired, ran=True, vacuumed=vacuumed)

    async def _batches(self, step: Callable[[int], Awaitable[int]]) -> int:
        total = 0
        while True:
            began = time.monotonic()
            n = await step(self.batch)
            total += n
            if n < self.batch:
                return total
            await asyncio.sleep((time.monotonic() - began) * self.pace)

    async def _vacuum(self, session: PgMaintenance, *, paced: bool) -> tuple[str, ...]:
        """VACUUM (ANALYZE) each engine table whose dead row versions (or rows changed since the
        last ANALYZE) passed the threshold: keeps the claim index free of dead entries, the
        visibility map set for index-only scans, and the planner's statistics current."""
        if self.vacuum == "never":
            return ()
        done: list[str] = []
        for t in await session.table_health():
            if self.vacuum == "auto" and t["server_autovacuum"]:
                continue
            limit = VACUUM_THRESHOLD + VACUUM_SCALE * t["live"]
            if t["dead"] > limit or t["modified"] > limit:
                await session.vacuum(t["name"], paced=paced)
                done.append(t["name"])
        return tuple(done)
