"""The queue engine's client: queues, sends, events, operations and statistics.

Every method runs one statement (or a short fixed sequence) through the engine's autocommit pool,
or inside the caller's transaction when ``conn=`` is given. psycopg errors are wrapped into the
project's error tree at this boundary.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, Self

import psycopg
from psycopg_pool import AsyncConnectionPool

from insightdesk.shared.errors import (
    DatabaseError,
    InvalidArgument,
    QueueNotFound,
)
from insightdesk.shared.queue.batches import Batch, NewJob
from insightdesk.shared.queue.connections import Executor, borrow
from insightdesk.shared.queue.jobs import Job
from insightdesk.shared.queue.migrator import migrate
from insightdesk.shared.queue.operations import QueueOperations, wrap_error
from insightdesk.shared.queue.options import (
    DEFAULT_JOB_OPTIONS,
    JobOptions,
    QueueOptions,
    validate_name,
)
from insightdesk.shared.queue.payloads import to_json
from insightdesk.shared.queue.registry import WorkerRegistry
from insightdesk.shared.queue.statements import Statements, notify_channel, statements
from insightdesk.shared.queue.supervisor import Supervisor
from insightdesk.shared.queue.worker import (
    DEFAULT_HEARTBEAT,
    BatchHandler,
    Handler,
    Worker,
)

log = logging.getLogger(__name__)


class QueueClient(QueueOperations):
    """Entry point of the engine for one schema.

    Build it with :meth:`connect` (owns a pool) or around an existing
    :class:`psycopg_pool.AsyncConnectionPool` whose connections are autocommit.
    """

    def __init__(
        self, pool: AsyncConnectionPool[Any], *, schema: str = "queue", dsn: str | None = None
    ) -> None:
        self.pool = pool
        self.schema = schema
        self.sql: Statements = statements(schema)
        self.channel = notify_channel(schema)
        self.dsn: str = dsn if dsn is not None else str(pool.conninfo)
        self._workers: list[Worker] = []
        self._keyed: dict[str, bool] = {}  # queue -> singleton/stately policy (for claim)
        self.supervisor = Supervisor(self)
        self.registry = WorkerRegistry(self)  # console: who works on what
        self._registered: list[uuid.UUID] = []

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(
        cls,
        dsn: str,
        *,
        schema: str = "queue",
        min_size: int = 1,
        max_size: int = 10,
        migrate_schema: bool = True,
    ) -> AsyncIterator[Self]:
        """Open a pool on ``dsn``, migrate the schema (unless told not to), and close on exit."""
        pool = make_pool(dsn, min_size=min_size, max_size=max_size)
        try:
            await pool.open(wait=True, timeout=30)
        except psycopg.Error as exc:
            raise DatabaseError(f"cannot connect to the queue database: {exc}") from exc
        try:
            client = cls(pool, schema=schema, dsn=dsn)
            if migrate_schema:
                await client.migrate()
            try:
                yield client
            finally:
                await client.close()
        finally:
            await pool.close()

    # ------------------------------------------------------------------ working

    async def work(
        self,
        queue: str,
        handler: Handler | BatchHandler,
        *,
        concurrency: int = 10,
        batch_size: int | None = None,
        batch: bool = False,
        prefetch: int = 0,
        poll_interval: float = 2.0,
        shutdown_timeout: float = 30.0,
        supervise: bool = True,
        listen: bool = True,
        default_heartbeat: float = DEFAULT_HEARTBEAT,
        on_job_done: Callable[[Job, str, float], None] | None = None,
    ) -> Worker:
        """Start consuming ``queue`` with ``handler``; returns the running :class:`Worker`.

        ``on_job_done(job, outcome, seconds)`` is called after each job with ``completed``,
        ``snoozed``, ``retried`` or ``failed`` (metrics hook).
        ``supervise`` also runs crash recovery and retention in this process (cheap and safe
        to run in every process). :meth:`close` stops everything gracefully.

        ``batch``: ``handler`` takes a list of jobs (at most ``batch_size`` per call, default
        10) and ``concurrency`` counts calls in flight; its outcome applies to every job of the
        list (see :mod:`insightdesk.shared.queue.worker`).
        """
        definition = await self.get_queue(queue)
        worker = Worker(
            self,
            queue,
            handler,
            concurrency=concurrency,
            batch_size=batch_size,
            batch=batch,
            prefetch=prefetch,
            poll_interval=poll_interval,
            shutdown_timeout=shutdown_timeout,
            default_heartbeat=default_heartbeat,
            listen=listen,
            keyed=definition["policy"] in {"singleton", "stately"},
            on_job_done=on_job_done,
        )
        await worker.start()
        self._workers.append(worker)
        self._registered.append(await self.registry.add(queue, concurrency))
        if supervise:
            self.supervisor.default_heartbeat = default_heartbeat
            self.supervisor.start()
        return worker

    async def close(self, timeout: float | None = None) -> None:
        """Stop every worker (finishing or releasing in-flight jobs), then the background tasks."""
        workers, self._workers = self._workers, []
        await asyncio.gather(*(w.stop(timeout) for w in workers))
        registered, self._registered = self._registered, []
        if registered:
            await self.registry.remove(*registered)
        await self.supervisor.stop()

    # ------------------------------------------------------------------ schema and queues

    async def migrate(self) -> int:
        async with self.pool.connection() as conn:
            return await migrate(conn, self.schema)

    async def create_queue(self, name: str, options: QueueOptions | None = None) -> None:
        """Create ``name`` or update its definition (idempotent)."""
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
            await self._execute("upsert_queue", params)
        except psycopg.errors.ForeignKeyViolation as exc:
            raise QueueNotFound(
                f"dead-letter queue {opts.dead_letter!r} of {name!r} does not exist; "
                "create it first"
            ) from exc
        except psycopg.errors.CheckViolation as exc:
            raise InvalidArgument(f"queue {name!r} cannot be its own dead-letter queue") from exc

    async def ensure_queue(self, name: str) -> None:
        """Create ``name`` with default options unless it exists (a sender's safety net; the
        consuming service owns the definition and sets it with :meth:`create_queue`)."""
        await self._execute("ensure_queue", {"name": validate_name(name)})

    async def get_queue(self, name: str) -> dict[str, Any]:
        rows = await self._fetch("get_queue", {"name": validate_name(name)})
        if not rows:
            raise QueueNotFound(f"queue {name!r} does not exist")
        return rows[0]

    async def list_queues(self) -> list[dict[str, Any]]:
        return await self._fetch("list_queues", {})

    async def delete_queue(self, name: str) -> bool:
        """Delete a queue with all its jobs, subscriptions and schedules."""
        self._keyed.pop(name, None)
        return bool(await self._fetch("delete_queue", {"name": validate_name(name)}))

    async def subscribe(self, event: str, queue: str) -> None:
        """Deliver every future ``publish(event, ...)`` to ``queue`` as a job."""
        params = {"event": validate_name(event, "event"), "name": validate_name(queue)}
        try:
            await self._execute("subscribe", params)
        except psycopg.errors.ForeignKeyViolation as exc:
            raise QueueNotFound(f"queue {queue!r} does not exist") from exc

    async def unsubscribe(self, event: str, queue: str) -> None:
        await self._execute(
            "unsubscribe", {"event": validate_name(event, "event"), "name": validate_name(queue)}
        )

    async def subscriptions(self) -> list[tuple[str, str]]:
        return [(r["event"], r["name"]) for r in await self._fetch("subscriptions", {})]

    # ------------------------------------------------------------------ sending

    async def send(
        self,
        queue: str,
        data: Any = None,
        options: JobOptions | None = None,
        *,
        conn: Executor | None = None,
    ) -> uuid.UUID | None:
        """Enqueue one job; returns its id, or None when a policy, throttle or id rejects it.

        With ``conn`` the job joins the caller's open transaction and becomes visible (and wakes
        workers) only when that transaction commits.
        """
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
        async with borrow(self.pool, conn) as c:
            try:
                cur = await c.execute(statement, params)
                row = await cur.fetchone()
                if row is None and opts.debounce:  # slot taken: try the next one
                    params["opts"] = to_json(opts.to_wire(slot_offset=1))
                    cur = await c.execute(statement, params)
                    row = await cur.fetchone()
                if row is None:
                    cur = await c.execute(self.sql["queue_exists"], {"name": queue})
                    exists = await cur.fetchone()
                    if not (exists and exists[0]):
                        raise QueueNotFound(
                            f"queue {queue!r} does not exist; create it with create_queue()"
                        )
                    return None
            except psycopg.Error as exc:
                raise wrap_error(exc, "send") from exc
        job_id: uuid.UUID = row[0]
        return job_id

    async def send_many(
        self,
        queue: str,
        items: Iterable[Any],
        options: JobOptions | None = None,
        *,
        conn: Executor | None = None,
    ) -> list[uuid.UUID | None]:
        """Enqueue many jobs in one statement; ids in input order (None where rejected).

        Each item is a payload (using ``options``) or a :class:`NewJob` with its own options.
        All or nothing: a bad item fails the whole call before anything is written.
        """
        validate_name(queue)
        common = options or DEFAULT_JOB_OPTIONS
        batch = Batch.build(items, common)
        if not batch.data:
            return []
        ids = await self._insert(queue, None, batch, common, conn)
        if batch.debounced:
            await self._debounce(queue, batch, ids, conn)
        return ids

    async def publish(
        self,
        event: str,
        data: Any = None,
        options: JobOptions | None = None,
        *,
        conn: Executor | None = None,
    ) -> list[uuid.UUID]:
        """Fan ``event`` out as one job in every queue subscribed to it, atomically."""
        validate_name(event, "event")
        opts = options or DEFAULT_JOB_OPTIONS
        if opts.id is not None:
            raise InvalidArgument(
                "publish creates one job per subscriber; a fixed id is not allowed"
            )
        batch = Batch.build([NewJob(data, opts)], opts)
        return [i for i in await self._insert(None, event, batch, opts, conn) if i is not None]

    async def _insert(
        self,
        queue: str | None,
        event: str | None,
        batch: Batch,
        common: JobOptions,
        conn: Executor | None,
        *,
        slot_offset: int = 0,
    ) -> list[uuid.UUID | None]:
        params = {
            "name": queue,
            "event": event,
            "common": to_json(common.to_wire(slot_offset=slot_offset)),
            "ids": batch.ids,
            "data": batch.data,
            "headers": batch.headers,
            "opts": batch.opts,
        }
        async with borrow(self.pool, conn) as c:
            try:
                cur = await c.execute(self.sql["insert_jobs"], params, binary=True)
                row = await cur.fetchone()
            except psycopg.Error as exc:
                raise wrap_error(exc, "send") from exc
        assert row is not None
        queues, ids = row[0], row[1]
        if queue is not None and not queues:
            raise QueueNotFound(f"queue {queue!r} does not exist; create it with create_queue()")
        return list(ids or [])

    async def _debounce(
        self, queue: str, batch: Batch, ids: list[uuid.UUID | None], conn: Executor | None
    ) -> None:
        """Jobs with debounce whose slot was taken go to the next slot (or are rejected)."""
        for i, new_id in enumerate(ids):
            if new_id is None and batch.debounced[i] is not None:
                opts = batch.debounced[i]
                assert opts is not None
                retry = Batch.build([NewJob(batch.raw[i], opts)], opts)
                result = await self._insert(queue, None, retry, opts, conn, slot_offset=1)
                ids[i] = result[0]


async def _configure(conn: psycopg.AsyncConnection[Any]) -> None:
    # Engine statements are short OLTP work on a few rows; JIT compilation only ever costs
    # milliseconds there (the planner over-estimates unnest() row counts).
    await conn.execute("SET jit = off")


def make_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> AsyncConnectionPool[Any]:
    """An autocommit pool: each engine statement is its own transaction, one round trip."""
    return AsyncConnectionPool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        kwargs={"autocommit": True},
        open=False,
        configure=_configure,
        check=AsyncConnectionPool.check_connection,
        reconnect_timeout=300,
    )
