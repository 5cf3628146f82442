"""Per-process background duties: crash recovery and retention, and the cron ticker's host.

Recovery is cheap (it reads only the few active jobs through a partial index) and safe to run
from every process at once (SKIP LOCKED), so every process runs it every few seconds: a job whose
worker was SIGKILLed is back in the queue within ``heartbeat + recover_interval`` seconds.
Retention purges are heavier, so only the process holding an advisory lock does them. They find
their work through indexes (a pass with nothing due is a few index probes), delete in short
batches with a pause between them so other queues' claims keep their latency, fold the counter
rows of ended connections, and VACUUM/ANALYZE the engine's tables when dead row versions pile up
on a server whose autovacuum is off (``vacuum="auto"``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import psycopg
from psycopg import sql as pg_sql
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
    vacuumed: tuple[str, ...] = ()


VacuumMode = Literal["auto", "always", "never"]
"""When the maintenance leader vacuums the engine's tables: ``auto`` only where the server's
autovacuum is off, ``always`` also where it is on, ``never`` leaves it to the server."""

# Vacuum a table once its dead row versions exceed this many plus a share of its live rows.
VACUUM_THRESHOLD = 20_000
VACUUM_SCALE = 0.1


class Supervisor:
    def __init__(
        self,
        client: QueueClient,
        *,
        recover_interval: float = 2.0,
        maintenance_interval: float = 15.0,
        default_heartbeat: float = DEFAULT_HEARTBEAT,
        batch: int = 2000,
        pace: float = 1.0,
        vacuum: VacuumMode = "auto",
    ) -> None:
        self.client = client
        self.recover_interval = recover_interval
        self.maintenance_interval = maintenance_interval
        self.default_heartbeat = default_heartbeat
        self.batch = batch
        self.pace = pace  # pause after each full batch, as a multiple of the batch's own time
        self.vacuum = vacuum
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
        """Purge finished jobs past delete_after, fail queued jobs past retention, fold counters,
        and vacuum the engine's tables when they need it.

        Runs in one process at a time (advisory lock); the others return ``ran=False``. Each
        batch is its own short transaction (the pool's connections are autocommit).
        """
        sql = self.client.sql
        key = f"insightdesk.queue.maintain:{self.client.schema}"
        async with self.client.pool.connection() as conn:
            cur = await conn.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (key,))
            row = await cur.fetchone()
            if not row or not row[0]:
                return MaintenanceResult(0, 0, ran=False)
            try:
                purged = await self._batches(conn, sql["purge_finished"])
                expired = await self._batches(conn, sql["expire_queued"])
                await conn.execute(sql["tidy_counts"])
                vacuumed = await self._vacuum(conn)
            finally:
                await conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (key,))
        if purged or expired or vacuumed:
            log.info(
                "maintenance purged %d and expired %d job(s), vacuumed %s",
                purged,
                expired,
                ", ".join(vacuumed) or "nothing",
            )
        return MaintenanceResult(purged, expired, ran=True, vacuumed=vacuumed)

    async def _batches(self, conn: psycopg.AsyncConnection[Any], statement: str) -> int:
        total = 0
        while True:
            began = time.monotonic()
            cur = await conn.execute(statement, {"limit": self.batch})
            n = cur.rowcount
            total += n
            if n < self.batch:
                return total
            await asyncio.sleep((time.monotonic() - began) * self.pace)

    async def _vacuum(self, conn: psycopg.AsyncConnection[Any]) -> tuple[str, ...]:
        """VACUUM (ANALYZE) each engine table whose dead row versions (or rows changed since the
        last ANALYZE) passed the threshold: keeps the claim index free of dead entries, the
        visibility map set for index-only scans, and the planner's statistics current."""
        if self.vacuum == "never":
            return ()
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(self.client.sql["table_health"], {"schema": self.client.schema})
        done: list[str] = []
        for t in await cur.fetchall():
            if self.vacuum == "auto" and t["server_autovacuum"]:
                continue
            limit = VACUUM_THRESHOLD + VACUUM_SCALE * t["live"]
            if t["dead"] > limit or t["modified"] > limit:
                table = pg_sql.Identifier(self.client.schema, t["name"])
                await conn.execute(pg_sql.SQL("VACUUM (ANALYZE) {}").format(table))
                done.append(t["name"])
        return tuple(done)
