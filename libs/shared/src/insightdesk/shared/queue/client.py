"""The queue engine's client: queues, sends, events, operations, statistics and workers.

The client is a facade over one :class:`~insightdesk.shared.queue.store.PgStore` (the engine's
database boundary: pool, statements, error wrapping, row mapping) and one
:class:`~insightdesk.shared.queue.consumer.Consumer` (the process's claim loop). Every
:meth:`work` of a client joins that consumer, so a process serves any number of queues over one
claim connection. Calls run through the store's autocommit pool, or inside the caller's
transaction when ``conn=`` is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any, Self

import psycopg
from psycopg_pool import AsyncConnectionPool

from insightdesk.shared.errors import DatabaseError, InvalidArgument
from insightdesk.shared.queue.batches import Batch, NewJob
from insightdesk.shared.queue.connections import Executor
from insightdesk.shared.queue.consumer import Consumer
from insightdesk.shared.queue.jobs import Job, JobInfo, JobState, QueueStats
from insightdesk.shared.queue.options import (
    DEFAULT_JOB_OPTIONS,
    JobOptions,
    QueueDefinition,
    QueueOptions,
    validate_name,
)
from insightdesk.shared.queue.outcomes import checked_delay
from insightdesk.shared.queue.ports import Failure, Postponed
from insightdesk.shared.queue.registry import WorkerRegistry
from insightdesk.shared.queue.statements import Statements
from insightdesk.shared.queue.store import PgStore
from insightdesk.shared.queue.supervisor import Supervisor
from insightdesk.shared.queue.tasks import STOP_WAIT, Loops, within
from insightdesk.shared.queue.worker import (
    DEFAULT_HEARTBEAT,
    BatchHandler,
    Handler,
    JobDoneHook,
    Worker,
    error_document,
)

log = logging.getLogger(__name__)


class QueueClient:
    """Entry point of the engine for one schema.

    Build it with :meth:`connect` (owns a pool) or around an existing
    :class:`psycopg_pool.AsyncConnectionPool` whose connections are autocommit.
    """

    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        *,
        schema: str = "queue",
        dsn: str | None = None,
        loops: Loops | None = None,
    ) -> None:
        self.store = PgStore(pool, schema=schema, dsn=dsn)
        self.loops = Loops() if loops is None else loops
        """The client's long-lived loops (claims, heartbeats, recovery, maintenance, history,
        cron): ``loops.dead`` and ``loops.on_death(...)`` make a dead one visible."""
        self.consumer = Consumer(self.store, loops=self.loops)
        self.supervisor = Supervisor(self.store, loops=self.loops)
        self.registry = WorkerRegistry(self.store)  # console: who works on what
        self._registered: list[uuid.UUID] = []

    @property
    def pool(self) -> AsyncConnectionPool[Any]:
        """The store's pool, for callers that run their own SQL beside the engine's."""
        return self.store.pool

    @property
    def schema(self) -> str:
        return self.store.schema

    @property
    def sql(self) -> Statements:
        return self.store.sql

    @property
    def channel(self) -> str:
        """The base of the schema's NOTIFY channels; a queue's own channel is
        :func:`~insightdesk.shared.queue.statements.queue_channel`."""
        return self.store.channel

    @property
    def dsn(self) -> str:
        return self.store.dsn

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(
        cls,
        dsn: str,
        *,
        schema: str = "queue",
        min_size: int = 1,
        max_size: int = 5,
        migrate_schema: bool = True,
    ) -> AsyncIterator[Self]:
        """Open a pool on ``dsn``, migrate the schema (unless told not to), and close on exit.

        The pool grows on demand up to ``max_size``: the consumer loop holds one connection
        however many queues it serves; heartbeats, recovery, maintenance and sends borrow one
        for a statement each, so 5 serves a process with any number of queues."""
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
        prefetch: int | None = None,
        poll_interval: float = 2.0,
        shutdown_timeout: float = 30.0,
        supervise: bool = True,
        listen: bool = True,
        default_heartbeat: float = DEFAULT_HEARTBEAT,
        on_job_done: JobDoneHook | None = None,
    ) -> Worker:
        """Start consuming ``queue`` with ``handler``; returns the running :class:`Worker`.

        Every worker of a client shares its :class:`Consumer`: one claim loop and one claim
        connection for all queues, one heartbeat statement per period for all held jobs.
        ``on_job_done(job, outcome, seconds)`` is called after each job with its
        :class:`~insightdesk.shared.queue.outcomes.Outcome` (metrics hook).
        ``supervise`` also runs crash recovery and retention in this process (cheap and safe
        to run in every process). ``default_heartbeat`` applies to the whole consumer (the
        last value given wins). :meth:`close` stops everything gracefully.

        ``batch``: ``handler`` takes a list of jobs (at most ``batch_size`` per call, default
        10) and ``concurrency`` counts calls in flight; its outcome applies to every job of the
        list (see :mod:`insightdesk.shared.queue.worker`).

        ``prefetch``: claimed jobs held beyond ``concurrency`` waiting for a runner; ``None``
        (default) holds up to ``concurrency`` ahead only while the handlers are quicker than a
        claim round trip, ``0`` never.
        """
        definition = await self.store.get_queue(queue)
        worker = Worker(
            self.consumer,
            queue,
            handler,
            concurrency=concurrency,
            batch_size=batch_size,
            batch=batch,
            prefetch=prefetch,
            poll_interval=poll_interval,
            shutdown_timeout=shutdown_timeout,
            listen=listen,
            keyed=definition.keyed,
            on_job_done=on_job_done,
        )
        self.consumer.default_heartbeat = default_heartbeat
        await worker.start()
        self._registered.append(await self.registry.add(queue, concurrency))
        if supervise:
            self.supervisor.default_heartbeat = default_heartbeat
            self.supervisor.start()
        return worker

    async def work_many(
        self,
        handlers: Mapping[str, Handler | BatchHandler],
        *,
        concurrency: int | Mapping[str, int] = 10,
        **options: Any,
    ) -> list[Worker]:
        """Start a worker per ``queue -> handler`` of ``handlers``, all on this client's one
        consumer loop; ``concurrency`` is one number for all or a number per queue (default
        10). Other keyword arguments are those of :meth:`work`. All or nothing: if a queue
        does not exist, the workers already started are stopped again."""
        started: list[Worker] = []
        try:
            for queue, handler in handlers.items():
                n = concurrency if isinstance(concurrency, int) else concurrency.get(queue, 10)
                started.append(await self.work(queue, handler, concurrency=n, **options))
        except BaseException:
            await asyncio.gather(*(w.stop(0) for w in started))
            raise
        return started

    async def close(self, timeout: float | None = None) -> None:
        """Stop every worker (finishing or releasing in-flight jobs), then the background tasks.

        Bounded whatever the database does: at most ``timeout`` (the workers' shutdown
        timeout) plus :data:`~insightdesk.shared.queue.consumer.FLUSH_WAIT` plus four times
        :data:`~insightdesk.shared.queue.tasks.STOP_WAIT` (35 s beyond ``timeout`` with the
        defaults), and only that long when the database hangs; what could not be settled
        meanwhile is left to crash recovery."""
        workers = self.consumer.workers
        await asyncio.gather(*(w.stop(timeout) for w in workers))
        await self.consumer.flush()
        registered, self._registered = self._registered, []
        if registered:
            await within("unregistering workers", STOP_WAIT, self.registry.remove(*registered))
        await self.supervisor.stop()

    # ------------------------------------------------------------------ schema and queues

    async def migrate(self) -> int:
        return await self.store.migrate()

    async def create_queue(self, name: str, options: QueueOptions | None = None) -> None:
        """Create ``name`` or update its definition (idempotent)."""
        await self.store.create_queue(name, options)

    async def ensure_queue(self, name: str) -> None:
        """Create ``name`` with default options unless it exists (a sender's safety net; the
        consuming service owns the definition and sets it with :meth:`create_queue`)."""
        await self.store.ensure_queue(name)

    async def get_queue(self, name: str) -> QueueDefinition:
        return await self.store.get_queue(name)

    async def list_queues(self) -> list[QueueDefinition]:
        return await self.store.list_queues()

    async def delete_queue(self, name: str) -> bool:
        """Delete a queue with all its jobs, subscriptions and schedules."""
        return await self.store.delete_queue(name)

    async def subscribe(self, event: str, queue: str) -> None:
        """Deliver every future ``publish(event, ...)`` to ``queue`` as a job."""
        await self.store.subscribe(event, queue)

    async def unsubscribe(self, event: str, queue: str) -> None:
        await self.store.unsubscribe(event, queue)

    async def subscriptions(self) -> list[tuple[str, str]]:
        return await self.store.subscriptions()

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
        return await self.store.send(queue, data, options, conn=conn)

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
        ids = await self.store.insert_batch(queue, None, batch, common, conn=conn)
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
        ids = await self.store.insert_batch(None, event, batch, opts, conn=conn)
        return [i for i in ids if i is not None]

    async def _debounce(
        self, queue: str, batch: Batch, ids: list[uuid.UUID | None], conn: Executor | None
    ) -> None:
        """Jobs with debounce whose slot was taken go to the next slot (or are rejected)."""
        for i, new_id in enumerate(ids):
            if new_id is None and batch.debounced[i] is not None:
                opts = batch.debounced[i]
                assert opts is not None
                retry = Batch.build([NewJob(batch.raw[i], opts)], opts)
                result = await self.store.insert_batch(
                    queue, None, retry, opts, conn=conn, slot_offset=1
                )
                ids[i] = result[0]

    # ------------------------------------------------------------------ operations

    async def cancel(self, *ids: uuid.UUID) -> list[uuid.UUID]:
        return await self.store.cancel(*ids)

    async def resume(self, *ids: uuid.UUID) -> list[uuid.UUID]:
        return await self.store.resume(*ids)

    async def retry(self, *ids: uuid.UUID) -> list[uuid.UUID]:
        """Give failed or cancelled jobs another attempt, now."""
        return await self.store.retry(*ids)

    async def delete(self, *ids: uuid.UUID) -> list[uuid.UUID]:
        return await self.store.delete(*ids)

    async def redrive(self, dead_letter_queue: str, *, limit: int = 1000) -> int:
        """Send queued jobs of a dead-letter queue back to their source queues; returns count."""
        return await self.store.redrive(dead_letter_queue, limit=limit)

    async def get_job(self, job_id: uuid.UUID) -> JobInfo:
        return await self.store.get_job(job_id)

    async def find_jobs(
        self,
        queue: str,
        *,
        singleton_key: str | None = None,
        state: JobState | None = None,
        limit: int = 100,
    ) -> list[JobInfo]:
        return await self.store.find_jobs(
            queue, singleton_key=singleton_key, state=state, limit=limit
        )

    async def stats(self, queue: str | None = None) -> list[QueueStats]:
        """Per queue: counts by state (exact), ready jobs and oldest-ready age (exact), and
        completions in the last minute (estimate); milliseconds however large the table."""
        return await self.store.stats(queue)

    async def ready_count(self, queue: str) -> int:
        """Ready jobs of ``queue``, exact; the same function a KEDA postgresql scaler queries
        (counters plus the due jobs no claim has promoted yet, one cheap statement)."""
        return await self.store.ready_count(queue)

    def scaler_query(self, queue: str) -> str:
        """The SQL to put in a KEDA ``postgresql`` trigger for ``queue``."""
        return self.store.scaler_query(queue)

    # ------------------------------------------------------------------ claims and acks by hand

    async def claim(
        self, queue: str, limit: int = 1, *, default_heartbeat: float = DEFAULT_HEARTBEAT
    ) -> list[Job]:
        """Claim up to ``limit`` ready jobs of ``queue`` (priority, then age; rows other
        consumers hold are skipped) without running them: the caller settles each with
        :meth:`complete`, :meth:`fail` or :meth:`snooze`, carrying its ``lease``.

        Nothing heartbeats these jobs: one not settled within its heartbeat period
        (``default_heartbeat`` unless the job or queue sets one) is presumed dead and crash
        recovery puts it back in the queue, after which its lease no longer settles it.
        """
        return await self.store.claim(queue, limit, default_heartbeat=default_heartbeat)

    async def fail(
        self,
        job: Job,
        error: dict[str, Any] | BaseException,
        *,
        delay: float | None = None,
        final: bool = False,
    ) -> bool:
        """A failed attempt of a claimed job: retried after ``delay`` (default: the job's retry
        policy) while attempts are left, else failed into its dead-letter queue; ``final``
        fails it at once. ``error`` (an exception or a JSON object) is stored as its output.
        False when ``job``'s lease no longer holds (the job was settled or re-queued)."""
        if delay is not None:
            delay = checked_delay(delay)
        document = error_document(error) if isinstance(error, BaseException) else error
        return bool(await self.store.fail_jobs([Failure(job, document, delay, final)]))

    async def snooze(self, job: Job, delay: float) -> bool:
        """Put a claimed job back in the queue to run after ``delay`` seconds, without using an
        attempt. False when ``job``'s lease no longer holds."""
        return bool(await self.store.postpone([Postponed(job, checked_delay(delay))]))

    async def complete(
        self,
        job_id: uuid.UUID,
        lease: uuid.UUID,
        output: Any = None,
        *,
        conn: Executor | None = None,
    ) -> bool:
        """Complete a claimed job, e.g. in the handler's own transaction (effectively once)."""
        return await self.store.complete(job_id, lease, output, conn=conn)


async def _configure(conn: psycopg.AsyncConnection[Any]) -> None:
    # Engine statements are short OLTP work on a few rows; JIT compilation only ever costs
    # milliseconds there (the planner over-estimates unnest() row counts).
    await conn.execute("SET jit = off")


def make_pool(dsn: str, *, min_size: int = 1, max_size: int = 5) -> AsyncConnectionPool[Any]:
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
