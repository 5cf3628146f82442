"""The engine's one database boundary: :class:`PgStore`.

It owns the connection pool, the statements rendered for its schema, the wrapping of psycopg
errors into the project's error tree (``raise ... from exc``) and the mapping of rows onto typed
records by column name. The client, the consumer loop, the heartbeater, the supervisor and the
cron scheduler receive the store, never the pool. Its in-memory twin is
:class:`~insightdesk.shared.queue.memory.MemoryStore`; both pass the same contract tests.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from insightdesk.shared.errors import (
    ConnectionLost,
    DatabaseError,
    InvalidArgument,
    JobConflict,
    JobNotFound,
    QueueError,
    QueueNotFound,
)
from insightdesk.shared.queue.batches import Batch
from insightdesk.shared.queue.connections import Executor, driver_connection
from insightdesk.shared.queue.jobs import Job, JobInfo, JobState, QueueStats
from insightdesk.shared.queue.migrator import migrate
from insightdesk.shared.queue.options import (
    DEFAULT_JOB_OPTIONS,
    JobOptions,
    QueueDefinition,
    QueueOptions,
    validate_name,
)
from insightdesk.shared.queue.payloads import to_json
from insightdesk.shared.queue.ports import ClaimRequest, Failure, Postponed
from insightdesk.shared.queue.session import (
    PgClaimSession,
    failure_params,
    open_session,
    postpone_params,
)
from insightdesk.shared.queue.statements import Statements, notify_channel, statements


def wrap_error(exc: psycopg.Error, action: str) -> QueueError:
    """The project error for a psycopg error at the engine's database boundary."""
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError) and not isinstance(
        exc, psycopg.errors.QueryCanceled | psycopg.errors.LockNotAvailable
    ):
        return ConnectionLost(f"{action}: database unavailable: {exc}")
    if isinstance(exc, psycopg.errors.UniqueViolation) and (
        exc.diag.constraint_name or ""
    ).startswith(("job_policy_", "job_throttle")):
        return JobConflict(
            f"{action}: the queue's policy already holds a job for that key "
            f"({exc.diag.constraint_name}); nothing was changed"
        )
    if isinstance(exc, psycopg.errors.DataError | psycopg.errors.InvalidTextRepresentation):
        return InvalidArgument(f"{action}: the database rejected a value: {exc}")
    return DatabaseError(f"{action} failed: {exc}")


@dataclass(frozen=True, slots=True)
class MaintenanceResult:
    purged: int
    expired: int
    ran: bool
    vacuumed: tuple[str, ...] = ()


class PgMaintenance:
    """Statements of one maintenance pass, on the connection that holds the advisory lock."""

    def __init__(self, store: PgStore, conn: psycopg.AsyncConnection[Any]) -> None:
        self._store = store
        self._conn = conn
        self._periods: list[float] | None = None  # retention periods left to purge this pass

    async def _count(self, name: str, params: dict[str, Any]) -> int:
        with self._store.wrapped(name):
            cur = await self._conn.execute(self._store.sql[name], params or None)
            return cur.rowcount

    async def purge(self, limit: int) -> int:
        """Delete up to ``limit`` finished jobs past their delete_after; how many (fewer than
        ``limit`` once nothing is due). The pass reads the distinct retention periods once and
        purges them one after the other, so every batch is a single index range."""
        if self._periods is None:
            with self._store.wrapped("retention_periods"):
                cur = await self._conn.execute(self._store.sql["retention_periods"])
                self._periods = [row[0] for row in await cur.fetchall()]
        total = 0
        while self._periods and total < limit:
            wanted = limit - total
            n = await self._count("purge_finished", {"limit": wanted, "after": self._periods[0]})
            total += n
            if n < wanted:  # this period has nothing more due
                self._periods.pop(0)
        return total

    async def expire(self, limit: int) -> int:
        """Fail up to ``limit`` queued jobs past their retention; how many."""
        return await self._count("expire_queued", {"limit": limit})

    async def fold_counters(self) -> None:
        """Fold the counter rows of ended connections and drop empty ones and old rates."""
        await self._count("tidy_counts", {})

    async def table_health(self) -> list[dict[str, Any]]:
        """Dead/live/modified row counts of the engine's tables, and the server's autovacuum."""
        with self._store.wrapped("table_health"):
            cur = self._conn.cursor(row_factory=dict_row)
            await cur.execute(self._store.sql["table_health"], {"schema": self._store.schema})
            return await cur.fetchall()

    async def vacuum(self, table: str, *, paced: bool = False) -> None:
        """VACUUM (ANALYZE) ``table``; ``paced`` sleeps as autovacuum does (cost-based delay,
        at five times autovacuum's default rate) so other queries keep their latency."""
        statement = psycopg.sql.SQL("VACUUM (ANALYZE) {}").format(
            psycopg.sql.Identifier(self._store.schema, table)
        )
        with self._store.wrapped("vacuum"):
            if not paced:
                await self._conn.execute(statement)
                return
            await self._conn.execute("SET vacuum_cost_delay = '2ms'; SET vacuum_cost_limit = 1000")
            try:
                await self._conn.execute(statement)
            finally:
                await self._conn.execute("RESET vacuum_cost_delay; RESET vacuum_cost_limit")


class PgStore:
    """Every statement of the engine, for one schema, over one autocommit pool."""

    def __init__(
        self, pool: AsyncConnectionPool[Any], *, schema: str = "queue", dsn: str | None = None
    ) -> None:
        self.pool = pool
        self.schema = schema
        self.sql: Statements = statements(schema)
        self.channel = notify_channel(schema)
        self.dsn: str = dsn if dsn is not None else str(pool.conninfo)
        self._keyed: dict[str, bool] = {}  # queue -> claims go through fetch_keyed

    # ------------------------------------------------------------------ plumbing

    @contextlib.contextmanager
    def wrapped(self, action: str) -> Iterator[None]:
        """Re-raise psycopg errors of the block as the project's errors."""
        try:
            yield
        except psycopg.Error as exc:
            raise wrap_error(exc, action) from exc

    @contextlib.asynccontextmanager
    async def connection(
        self, conn: Executor | None = None
    ) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """The caller's connection if given, else one from the pool (autocommit)."""
        if conn is not None:
            yield await driver_connection(conn)
            return
        try:
            async with self.pool.connection() as pooled:
                yield pooled
        except psycopg.OperationalError as exc:
            raise ConnectionLost(f"database unavailable: {exc}") from exc

    async def execute(
        self, name: str, params: dict[str, Any], *, conn: Executor | None = None
    ) -> int:
        """Run statement ``name``; returns its row count."""
        async with self.connection(conn) as c:
            with self.wrapped(name):
                cur = await c.execute(self.sql[name], params)
                return cur.rowcount

    async def fetch(
        self, name: str, params: dict[str, Any], *, conn: Executor | None = None
    ) -> list[dict[str, Any]]:
        """Run statement ``name``; its rows as dicts keyed by column name."""
        async with self.connection(conn) as c:
            with self.wrapped(name):
                cur = c.cursor(row_factory=dict_row)
                await cur.execute(self.sql[name], params)
                return await cur.fetchall()

    async def migrate(self) -> int:
        async with self.connection() as conn:
            return await migrate(conn, self.schema)

    def session(self, *, listen: bool) -> AbstractAsyncContextManager[PgClaimSession]:
        return open_session(self, listen=listen)

    # ------------------------------------------------------------------ queues

    async def create_queue(self, name: str, options: QueueOptions | None = None) -> None:
        validate_name(name)
        opts = options or QueueOptions()
        params = {
            "name": name,
            "policy": opts.policy.value,
            "priority": opts.priority,
            "retry_limit": opts.retry_limit,
            "retry_delay": opts.retry_delay,
            "retry_backoff": opts.retry_backoff,
            "retry_delay_max": opts.retry_delay_max,
            "expire_in": opts.expire_in,
            "heartbeat": opts.heartbeat,
            "retention": opts.retention,
            "delete_after": opts.delete_after,
            "dead_letter": opts.dead_letter,
        }
        self._keyed.pop(name, None)
        try:
            await self.execute("upsert_queue", params)
        except DatabaseError as exc:
            if isinstance(exc.__cause__, psycopg.errors.ForeignKeyViolation):
                raise QueueNotFound(
                    f"dead-letter queue {opts.dead_letter!r} of {name!r} does not exist; "
                    "create it first"
                ) from exc.__cause__
            if isinstance(exc.__cause__, psycopg.errors.CheckViolation):
                raise InvalidArgument(
                    f"queue {name!r} cannot be its own dead-letter queue"
                ) from exc.__cause__
            raise

    async def ensure_queue(self, name: str) -> None:
        await self.execute("ensure_queue", {"name": validate_name(name)})

    async def get_queue(self, name: str) -> QueueDefinition:
        rows = await self.fetch("get_queue", {"name": validate_name(name)})
        if not rows:
            raise QueueNotFound(f"queue {name!r} does not exist")
        definition = QueueDefinition.from_row(rows[0])
        self._keyed[name] = definition.keyed
        return definition

    async def list_queues(self) -> list[QueueDefinition]:
        return [QueueDefinition.from_row(r) for r in await self.fetch("list_queues", {})]

    async def delete_queue(self, name: str) -> bool:
        self._keyed.pop(name, None)
        return bool(await self.fetch("delete_queue", {"name": validate_name(name)}))

    async def subscribe(self, event: str, queue: str) -> None:
        params = {"event": validate_name(event, "event"), "name": validate_name(queue)}
        try:
            await self.execute("subscribe", params)
        except DatabaseError as exc:
            if isinstance(exc.__cause__, psycopg.errors.ForeignKeyViolation):
                raise QueueNotFound(f"queue {queue!r} does not exist") from exc.__cause__
            raise

    async def unsubscribe(self, event: str, queue: str) -> None:
        params = {"event": validate_name(event, "event"), "name": validate_name(queue)}
        await self.execute("unsubscribe", params)

    async def subscriptions(self) -> list[tuple[str, str]]:
        return [(r["event"], r["name"]) for r in await self.fetch("subscriptions", {})]

    async def _is_keyed(self, queue: str) -> bool:
        keyed = self._keyed.get(queue)
        if keyed is None:
            keyed = (await self.get_queue(queue)).keyed
        return keyed

    # ------------------------------------------------------------------ sending

    async def send(
        self,
        queue: str,
        data: Any = None,
        options: JobOptions | None = None,
        *,
        conn: Executor | None = None,
    ) -> uuid.UUID | None:
        """Insert one job; its id, or None when a policy, throttle or existing id rejects it."""
        validate_name(queue)
        opts = options or DEFAULT_JOB_OPTIONS
        params = {
            "name": queue,
            "id": opts.id,
            "data": None if data is None else to_json(data),
            "headers": to_json(opts.headers, "headers") if opts.headers else None,
            "opts": to_json(opts.to_wire()),
        }
        statement = self.sql["insert_job"]
        async with self.connection(conn) as c:
            with self.wrapped("send"):
                cur = await c.execute(statement, params)
                row = await cur.fetchone()
                if row is None and opts.debounce:  # slot taken: try the next one
                    params["opts"] = to_json(opts.to_wire(slot_offset=1))
                    cur = await c.execute(statement, params)
                    row = await cur.fetchone()
                if row is None:
                    cur = await c.execute(self.sql["queue_exists"], {"name": queue})
                    exists = await cur.fetchone()
        if row is None:
            if not (exists and exists[0]):
                raise QueueNotFound(
                    f"queue {queue!r} does not exist; create it with create_queue()"
                )
            return None
        job_id: uuid.UUID = row[0]
        return job_id

    async def insert_batch(
        self,
        queue: str | None,
        event: str | None,
        batch: Batch,
        common: JobOptions,
        *,
        conn: Executor | None = None,
        slot_offset: int = 0,
    ) -> list[uuid.UUID | None]:
        """Insert a batch into ``queue``, or into every queue subscribed to ``event``."""
        params = {
            "name": queue,
            "event": event,
            "common": to_json(common.to_wire(slot_offset=slot_offset)),
            "ids": batch.ids,
            "data": batch.data,
            "headers": batch.headers,
            "opts": batch.opts,
        }
        async with self.connection(conn) as c:
            with self.wrapped("send"):
                cur = await c.execute(self.sql["insert_jobs"], params, binary=True)
                row = await cur.fetchone()
        if row is None:
            raise DatabaseError("send: the insert statement returned no row")
        queues, ids = row[0], row[1]
        if queue is not None and not queues:
            raise QueueNotFound(f"queue {queue!r} does not exist; create it with create_queue()")
        return list(ids or [])

    # ------------------------------------------------------------------ jobs

    async def _ids(self, name: str, ids: tuple[uuid.UUID, ...]) -> list[uuid.UUID]:
        return [r["id"] for r in await self.fetch(name, {"ids": list(ids)})]

    async def cancel(self, *ids: uuid.UUID) -> list[uuid.UUID]:
        return await self._ids("cancel", ids)

    async def resume(self, *ids: uuid.UUID) -> list[uuid.UUID]:
        return await self._ids("resume", ids)

    async def retry(self, *ids: uuid.UUID) -> list[uuid.UUID]:
        return await self._ids("retry", ids)

    async def delete(self, *ids: uuid.UUID) -> list[uuid.UUID]:
        return await self._ids("delete", ids)

    async def redrive(self, dead_letter_queue: str, *, limit: int = 1000) -> int:
        rows = await self.fetch(
            "redrive", {"name": validate_name(dead_letter_queue), "limit": limit}
        )
        return int(rows[0]["moved"])

    async def get_job(self, job_id: uuid.UUID) -> JobInfo:
        rows = await self.fetch("get_job", {"id": job_id})
        if not rows:
            raise JobNotFound(f"no job with id {job_id}")
        return JobInfo.from_row(rows[0])

    async def find_jobs(
        self,
        queue: str,
        *,
        singleton_key: str | None = None,
        state: JobState | None = None,
        limit: int = 100,
    ) -> list[JobInfo]:
        params = {
            "name": validate_name(queue),
            "key": singleton_key,
            "state": state.value if state else None,
            "limit": limit,
        }
        return [JobInfo.from_row(r) for r in await self.fetch("find_jobs", params)]

    async def claim(
        self, queue: str, limit: int = 1, *, default_heartbeat: float = 15.0
    ) -> list[Job]:
        """Claim up to ``limit`` ready jobs of ``queue`` outside any consumer loop."""
        validate_name(queue)
        if limit < 1:
            raise InvalidArgument(f"limit must be >= 1, got {limit}")
        request = ClaimRequest(queue, limit, await self._is_keyed(queue))
        async with self.connection() as conn:
            claimed = await PgClaimSession(self, conn, listen=False).claim(
                [], [request], default_heartbeat=default_heartbeat
            )
        return claimed.jobs

    async def complete(
        self,
        job_id: uuid.UUID,
        lease: uuid.UUID,
        output: Any = None,
        *,
        conn: Executor | None = None,
    ) -> bool:
        params = {"ids": [job_id], "leases": [lease], "outputs": [to_json(output, "output")]}
        return bool(await self.fetch("complete", params, conn=conn))

    async def fail_jobs(self, failures: list[Failure]) -> int:
        if not failures:
            return 0
        return len(await self.fetch("fail", failure_params(failures)))

    async def postpone(self, postponed: list[Postponed]) -> int:
        if not postponed:
            return 0
        return len(await self.fetch("snooze", postpone_params(postponed)))

    async def heartbeat(self, jobs: list[Job]) -> int:
        if not jobs:
            return 0
        params = {"ids": [j.id for j in jobs], "leases": [j.lease for j in jobs]}
        return await self.execute("heartbeat", params)

    # ------------------------------------------------------------------ statistics

    async def stats(self, queue: str | None = None) -> list[QueueStats]:
        rows = await self.fetch("stats", {"name": validate_name(queue) if queue else None})
        return [QueueStats(**r) for r in rows]

    def _schema_ident(self) -> str:
        return psycopg.sql.Identifier(self.schema).as_string(None)

    async def ready_count(self, queue: str) -> int:
        async with self.connection() as c:
            with self.wrapped("ready_count"):
                cur = await c.execute(
                    f"SELECT {self._schema_ident()}.ready_count(%s)",  # quoted identifier
                    (validate_name(queue),),
                )
                row = await cur.fetchone()
        return 0 if row is None else int(row[0])

    def scaler_query(self, queue: str) -> str:
        validate_name(queue)
        literal = queue.replace("'", "''")
        return f"SELECT {self._schema_ident()}.ready_count('{literal}')"

    # ------------------------------------------------------------------ supervision

    async def recover(self, *, default_heartbeat: float, limit: int) -> list[tuple[uuid.UUID, str]]:
        rows = await self.fetch("recover", {"default_heartbeat": default_heartbeat, "limit": limit})
        return [(r["id"], r["state"]) for r in rows]

    @contextlib.asynccontextmanager
    async def maintenance(self) -> AsyncIterator[PgMaintenance | None]:
        """The maintenance leader's session: None unless this caller won the schema's advisory
        lock (one maintainer at a time); the lock is released on exit."""
        key = f"insightdesk.queue.maintain:{self.schema}"
        async with self.connection() as conn:
            with self.wrapped("maintenance lock"):
                cur = await conn.execute(
                    "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (key,)
                )
                row = await cur.fetchone()
            if not row or not row[0]:
                yield None
                return
            try:
                yield PgMaintenance(self, conn)
            finally:
                if not conn.closed:
                    with contextlib.suppress(psycopg.Error):
                        await conn.execute(
                            "SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (key,)
                        )

    # ------------------------------------------------------------------ cron schedules

    async def upsert_schedule(self, params: dict[str, Any]) -> None:
        try:
            await self.execute("upsert_schedule", params)
        except DatabaseError as exc:
            if isinstance(exc.__cause__, psycopg.errors.ForeignKeyViolation):
                raise QueueNotFound(f"queue {params['queue']!r} does not exist") from exc.__cause__
            raise

    async def delete_schedule(self, name: str) -> bool:
        return await self.execute("delete_schedule", {"name": name}) > 0

    async def list_schedules(self) -> list[dict[str, Any]]:
        return await self.fetch("list_schedules", {})

    async def advance_schedule(self, name: str, slot: datetime) -> bool:
        """Move schedule ``name`` to ``slot`` unless it is there already."""
        return await self.execute("claim_slot", {"name": name, "slot": slot}) > 0

    async def fire_schedule(
        self, name: str, slot: datetime, queue: str, data: Any, options: JobOptions
    ) -> uuid.UUID | None:
        """Advance schedule ``name`` to ``slot`` and insert its job in one transaction; None
        when another scheduler fired that slot first (or a policy rejected the job)."""
        async with self.connection() as conn:
            with self.wrapped("fire schedule"):
                async with conn.transaction():
                    cur = await conn.execute(self.sql["claim_slot"], {"name": name, "slot": slot})
                    if cur.rowcount == 0:
                        return None
                    return await self.send(queue, data, options, conn=conn)
