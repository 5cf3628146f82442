"""The worker loop: claim, run, acknowledge, with as few round trips as possible.

With ``prefetch`` > 0 the worker may hold that many claimed jobs beyond ``concurrency``
waiting for a free handler, so the next claim's round trip overlaps the running handlers (at
most ``concurrency`` handlers still run at once). It raises throughput when handlers are short
and CPU-bound; it is off by default because a prefetched job waits behind busy handlers instead
of going to an idle worker elsewhere.

One *pump* coroutine owns a database connection. Each cycle it sends a single statement that
both completes the jobs finished since the last cycle and claims as many ready jobs as there are
free slots, so a busy worker spends about one round trip per batch. ``concurrency`` long-lived
*runner* coroutines take claimed jobs from an in-memory queue and call the handler; no task is
created per job. Failures, snoozes and heartbeats use their own (rarer) statements.

When the queue is empty the pump sleeps until the first of: a NOTIFY for its queue (the pump's
own connection LISTENs, so the backend that delivers the notification runs the claim too), the
next ``start_after`` among its delayed jobs, or the poll interval (a safety net for lost
notifications). On stop it stops claiming, lets in-flight jobs finish within a timeout and
releases whatever is still running back to the queue without using an attempt.

With ``batch=True`` the handler takes a *list* of jobs: each claim's rows (at most
``batch_size``) go to one call, ``concurrency`` counts calls in flight and ``prefetch`` claimed
batches held beyond them. The call's outcome applies to every job of the batch: a return
completes them all (a list as long as the batch gives job ``i`` output ``i``; any other value is
every job's output), an exception or ``Snooze``/``RetryLater``/``Reject`` applies to each job.
The batch runs under the smallest ``expire_in`` of its jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

from insightdesk.shared.errors import InvalidArgument
from insightdesk.shared.queue.jobs import Job
from insightdesk.shared.queue.options import validate_name
from insightdesk.shared.queue.outcomes import Reject, RetryLater, Snooze
from insightdesk.shared.queue.payloads import to_json
from insightdesk.shared.queue.tasks import cancel_and_wait

if TYPE_CHECKING:
    from insightdesk.shared.queue.client import QueueClient

log = logging.getLogger(__name__)

Handler = Callable[[Job], Awaitable[Any]]
BatchHandler = Callable[[list[Job]], Awaitable[Any]]

DEFAULT_BATCH_SIZE = 10
"""Jobs per call of a batch handler when ``batch_size`` is not given."""

DEFAULT_HEARTBEAT = 15.0
"""Seconds without a heartbeat after which an active job is presumed dead (per-job override)."""


@dataclass(slots=True)
class WorkerStats:
    claimed: int = 0
    completed: int = 0
    failed: int = 0
    snoozed: int = 0
    released: int = 0
    cycles: int = 0
    errors: int = 0


def error_document(exc: BaseException) -> dict[str, Any]:
    return {
        "type": type(exc).__name__,
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(exc, limit=20))[-4000:],
    }


def _batch_outputs(output: Any, size: int) -> list[str | None]:
    """The stored output of each job of a batch whose handler returned ``output``."""
    if isinstance(output, list | tuple) and len(output) == size:
        return [None if o is None else to_json(o, "handler output") for o in output]
    text = None if output is None else to_json(output, "handler output")
    return [text] * size


def _reported(job: Job, outcome: str) -> str:
    """The outcome ``on_job_done`` reports: completed, snoozed, retried (attempts left) or
    failed (none left, or rejected)."""
    if outcome == "failed":
        return "retried" if job.retry_count < job.retry_limit else "failed"
    return "failed" if outcome == "rejected" else outcome


class Worker:
    """Consumes one queue with ``concurrency`` handlers in flight at most."""

    def __init__(
        self,
        client: QueueClient,
        queue: str,
        handler: Handler | BatchHandler,
        *,
        concurrency: int = 10,
        batch_size: int | None = None,
        batch: bool = False,
        prefetch: int = 0,
        poll_interval: float = 2.0,
        shutdown_timeout: float = 30.0,
        default_heartbeat: float = DEFAULT_HEARTBEAT,
        listen: bool = True,
        keyed: bool = False,
        on_job_done: Callable[[Job, str, float], None] | None = None,
    ) -> None:
        validate_name(queue)
        if concurrency < 1:
            raise InvalidArgument(f"concurrency must be >= 1, got {concurrency}")
        if prefetch < 0:
            raise InvalidArgument(f"prefetch must be >= 0, got {prefetch}")
        if batch_size is not None and batch_size < 1:
            raise InvalidArgument(f"batch_size must be >= 1, got {batch_size}")
        if poll_interval <= 0:
            raise InvalidArgument(f"poll_interval must be > 0, got {poll_interval}")
        self.client = client
        self.queue = queue
        self.handler = handler
        self.concurrency = concurrency
        self.batch = batch
        self.batch_size = batch_size or (DEFAULT_BATCH_SIZE if batch else concurrency)
        self.prefetch = prefetch
        self.poll_interval = poll_interval
        self.shutdown_timeout = shutdown_timeout
        self.default_heartbeat = default_heartbeat
        self.listen = listen
        self.stats = WorkerStats()
        self._fetch_sql = client.sql["fetch_keyed" if keyed else "fetch"]
        self._on_job_done = on_job_done
        self._ready: asyncio.Queue[Job] = asyncio.Queue()
        self._ready_batches: asyncio.Queue[list[Job]] = asyncio.Queue()
        self._batches = 0  # batch mode: claimed batches running or waiting
        self._running: dict[uuid.UUID, Job] = {}
        self._claimed: dict[uuid.UUID, Job] = {}  # running or waiting in _ready: all we hold
        self._inflight = 0
        self._done_ids: list[uuid.UUID] = []
        self._done_leases: list[uuid.UUID] = []
        self._done_outputs: list[str | None] = []
        self._failures: list[tuple[Job, dict[str, Any], float | None, bool]] = []
        self._snoozes: list[tuple[Job, float]] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._maybe_ready = True
        self._stopping = False
        self._runners_gone = False
        self._pump_task: asyncio.Task[None] | None = None
        self._runners: list[asyncio.Task[None]] = []
        self._heartbeat_task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self._pump_task is not None:
            return
        runner = self._batch_runner if self.batch else self._runner
        self._runners = [
            asyncio.create_task(runner(), name=f"worker:{self.queue}:{i}")
            for i in range(self.concurrency)
        ]
        self._heartbeat_task = asyncio.create_task(
            self._heartbeats(), name=f"heartbeat:{self.queue}"
        )
        self._pump_task = asyncio.create_task(self._pump(), name=f"pump:{self.queue}")

    @property
    def task(self) -> asyncio.Task[None] | None:
        return self._pump_task

    async def stop(self, timeout: float | None = None) -> None:
        """Stop claiming; let in-flight jobs finish within ``timeout``; release the rest."""
        if self._pump_task is None:
            return
        timeout = self.shutdown_timeout if timeout is None else timeout
        self._stopping = True
        self._wake.set()
        if self._inflight:
            self._idle.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), timeout)
        for task in self._runners:
            task.cancel()
        await asyncio.gather(*self._runners, return_exceptions=True)
        self._runners_gone = True  # whatever is still in _running is released by the pump
        self._wake.set()
        await asyncio.wait([self._pump_task])
        if self._heartbeat_task is not None:
            await cancel_and_wait(self._heartbeat_task)
        self._pump_task = None

    # ------------------------------------------------------------------ runners

    async def _runner(self) -> None:
        ready = self._ready
        handler = cast("Handler", self.handler)
        while True:
            job = await ready.get()
            self._running[job.id] = job
            started = time.perf_counter()
            outcome = "completed"
            deadline = asyncio.timeout(job.expire_in)
            try:
                async with deadline:
                    output = await handler(job)
                text = None if output is None else to_json(output, "handler output")
            except asyncio.CancelledError:
                # Shutdown timed out while this job ran: it stays in _running and the pump
                # releases it back to the queue.
                raise
            except Exception as exc:  # noqa: BLE001  # every handler error has an outcome
                outcome = self._record_failure([job], exc, deadline, job.expire_in)
            else:
                self._done_ids.append(job.id)
                self._done_leases.append(job.lease)
                self._done_outputs.append(text)
            self._finished([job], outcome, started)

    async def _batch_runner(self) -> None:
        ready = self._ready_batches
        handler = cast("BatchHandler", self.handler)
        running = self._running
        while True:
            jobs = await ready.get()
            for job in jobs:
                running[job.id] = job
            started = time.perf_counter()
            outcome = "completed"
            expire_in = min(job.expire_in for job in jobs)
            deadline = asyncio.timeout(expire_in)
            try:
                async with deadline:
                    output = await handler(jobs)
                texts = _batch_outputs(output, len(jobs))
            except asyncio.CancelledError:
                raise  # shutdown timed out: the pump releases the batch back to the queue
            except Exception as exc:  # noqa: BLE001  # every handler error has an outcome
                outcome = self._record_failure(jobs, exc, deadline, expire_in)
            else:
                self._done_ids.extend(job.id for job in jobs)
                self._done_leases.extend(job.lease for job in jobs)
                self._done_outputs.extend(texts)
            self._batches -= 1
            self._finished(jobs, outcome, started)

    def _record_failure(
        self, jobs: list[Job], exc: Exception, deadline: asyncio.Timeout, expire_in: float
    ) -> str:
        """Map what a handler raised onto the engine outcome of each of ``jobs``; the one place
        these rules live for single jobs and batches alike. Returns the outcome's name."""
        delay: float | None = None
        final = False
        err: BaseException = exc
        if isinstance(exc, Snooze):
            if not exc.count_attempt:
                self._snoozes.extend((job, exc.delay) for job in jobs)
                return "snoozed"
            delay = exc.delay
        elif isinstance(exc, RetryLater):
            delay = exc.delay
        elif isinstance(exc, Reject):
            final = True
        elif isinstance(exc, TimeoutError) and deadline.expired():
            # ours, not a timeout raised inside the handler
            err = TimeoutError(f"ran longer than expire_in ({expire_in}s)")
            err.__cause__ = exc
        elif not isinstance(exc, InvalidArgument):
            log.warning("%d job(s) on %s failed: %r", len(jobs), self.queue, exc)
        document = error_document(err)
        self._failures.extend((job, document, delay, final) for job in jobs)
        if isinstance(exc, Snooze):
            return "snoozed"
        return "rejected" if final else "failed"

    def _finished(self, jobs: list[Job], outcome: str, started: float) -> None:
        running, claimed = self._running, self._claimed
        for job in jobs:
            del running[job.id]
            del claimed[job.id]
        self._inflight -= len(jobs)
        if not self._inflight:
            self._idle.set()
        self._wake.set()
        if self._on_job_done is not None:
            elapsed = time.perf_counter() - started
            for job in jobs:
                self._on_job_done(job, _reported(job, outcome), elapsed)

    # ------------------------------------------------------------------ pump

    async def _pump(self) -> None:
        backoff = 0.05
        conn: psycopg.AsyncConnection[Any] | None = None
        next_start: float | None = None  # monotonic time at which a delayed job becomes ready
        try:
            while True:
                try:
                    if conn is None or conn.closed:
                        conn = await self._connect()
                    if self._failures or self._snoozes:
                        await self._flush_failures(conn)
                    if self.batch:
                        free = (self.concurrency + self.prefetch - self._batches) * self.batch_size
                    else:
                        free = self.concurrency + self.prefetch - self._inflight
                    want = 0
                    if (
                        not self._stopping
                        and free > 0
                        and (
                            self._maybe_ready
                            or (next_start is not None and time.monotonic() >= next_start)
                        )
                    ):
                        want = min(free, self.batch_size)
                    if want or self._done_ids:
                        got = await self._cycle(conn, want)
                        backoff = 0.05
                        if want:
                            if got < want:
                                self._maybe_ready = False
                                next_start = await self._next_start(conn)
                            else:
                                self._maybe_ready = True
                            continue
                    if (
                        self._stopping
                        and (not self._inflight or self._runners_gone)
                        and not self._done_ids
                    ):
                        break
                    if self._stopping and self._failures:
                        continue
                    timeout = self.poll_interval
                    if next_start is not None:
                        timeout = min(timeout, max(0.0, next_start - time.monotonic()))
                    self._wake.clear()
                    if not (self._done_ids or self._failures or self._snoozes):
                        await self._sleep_until_woken(conn, timeout)
                except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                    self.stats.errors += 1
                    log.warning(
                        "worker %s lost its database connection (%s); retrying in %.2fs",
                        self.queue,
                        exc,
                        backoff,
                    )
                    await self._discard(conn)
                    conn = None
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                    self._maybe_ready = True
                except psycopg.errors.UniqueViolation:
                    # Two workers raced for the same singleton key; the loser simply retries.
                    self._maybe_ready = True
                    await asyncio.sleep(0.005)
        finally:
            await self._release_running(conn)
            if conn is not None:
                if self.listen and not conn.closed:
                    with contextlib.suppress(psycopg.Error):
                        await conn.execute("UNLISTEN *")
                await self.client.pool.putconn(conn)

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        """Take the pump's connection; it also LISTENs, so a NOTIFY wakes the very backend
        that then runs the claim (no second idle process to wake on the pickup path)."""
        conn: psycopg.AsyncConnection[Any] = await self.client.pool.getconn()
        if self.listen:
            conn.add_notify_handler(self._on_notify)
            await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.client.channel)))
        self._maybe_ready = True  # anything sent while we were not listening
        return conn

    def _on_notify(self, note: psycopg.Notify) -> None:
        if note.payload == self.queue:
            self._maybe_ready = True
            self._wake.set()

    async def _sleep_until_woken(self, conn: psycopg.AsyncConnection[Any], timeout: float) -> None:
        """Sleep until a runner finishes, a NOTIFY arrives on the pump's connection, the next
        delayed job is due, or the poll interval passes (a safety net for lost notifications)."""
        loop = asyncio.get_running_loop()
        fd = conn.pgconn.socket if self.listen else -1
        if fd >= 0:
            loop.add_reader(fd, self._wake.set)
        try:
            await asyncio.wait_for(self._wake.wait(), timeout)
        except TimeoutError:
            self._maybe_ready = True
        finally:
            if fd >= 0:
                loop.remove_reader(fd)
        if fd >= 0:
            pgconn = conn.pgconn
            pgconn.consume_input()  # raises OperationalError if the server went away
            while (note := pgconn.notifies()) is not None:
                if note.extra.decode() == self.queue:
                    self._maybe_ready = True

    async def _cycle(self, conn: psycopg.AsyncConnection[Any], want: int) -> int:
        # Take the finished jobs now: runners append to fresh lists while the statement runs.
        ids, leases, outputs = self._done_ids, self._done_leases, self._done_outputs
        self._done_ids, self._done_leases, self._done_outputs = [], [], []
        params = {
            "done_ids": ids,
            "done_leases": leases,
            "done_outputs": outputs,
            "name": self.queue,
            "limit": want,
            "default_heartbeat": self.default_heartbeat,
        }
        cur = conn.cursor(row_factory=tuple_row, binary=True)
        try:
            await cur.execute(self._fetch_sql, params)
            rows = await cur.fetchall() if want else []
        except BaseException:
            self._done_ids[:0] = ids
            self._done_leases[:0] = leases
            self._done_outputs[:0] = outputs
            raise
        self.stats.completed += len(ids)
        self.stats.cycles += 1
        if rows:
            self.stats.claimed += len(rows)
            queue = self.queue
            self._inflight += len(rows)
            claimed = self._claimed
            if self.batch:
                jobs = [Job.from_claim(queue, r) for r in rows]
                for job in jobs:
                    claimed[job.id] = job
                self._batches += 1
                self._ready_batches.put_nowait(jobs)
                return len(rows)
            put = self._ready.put_nowait
            for r in rows:
                job = Job.from_claim(queue, r)
                claimed[job.id] = job
                put(job)
        return len(rows)

    async def _next_start(self, conn: psycopg.AsyncConnection[Any]) -> float | None:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(self.client.sql["next_start"], {"name": self.queue})
        row = await cur.fetchone()
        if row is None or row[0] is None:
            return None
        nxt: datetime = row[0]
        db_now: datetime = row[1]
        return time.monotonic() + max(0.0, (nxt - db_now).total_seconds())

    async def _flush_failures(self, conn: psycopg.AsyncConnection[Any]) -> None:
        failures, self._failures = self._failures, []
        snoozes, self._snoozes = self._snoozes, []
        try:
            if failures:
                params = {
                    "ids": [f[0].id for f in failures],
                    "leases": [f[0].lease for f in failures],
                    "errors": [to_json(f[1], "error") for f in failures],
                    "delays": [f[2] for f in failures],
                    "final": [f[3] for f in failures],
                }
                await conn.execute(self.client.sql["fail"], params)
                self.stats.failed += len(failures)
            if snoozes:
                params = {
                    "ids": [s[0].id for s in snoozes],
                    "leases": [s[0].lease for s in snoozes],
                    "delays": [s[1] for s in snoozes],
                }
                await conn.execute(self.client.sql["snooze"], params)
                self.stats.snoozed += len(snoozes)
        except BaseException:
            self._failures[:0] = failures
            self._snoozes[:0] = snoozes
            raise
        self._maybe_ready = True  # a retry may be due now (retry_delay 0)

    async def _release_running(self, conn: psycopg.AsyncConnection[Any] | None) -> None:
        """Give back claimed-but-unfinished jobs (shutdown), without using an attempt."""
        leftover = list(self._claimed.values())
        while not self._ready.empty():
            self._ready.get_nowait()
        while not self._ready_batches.empty():
            self._ready_batches.get_nowait()
        self._batches = 0
        self._running.clear()
        self._claimed.clear()
        if not leftover and not self._done_ids and not self._failures and not self._snoozes:
            return
        try:
            if conn is None or conn.closed:
                conn = await self.client.pool.getconn()
            if self._failures or self._snoozes:
                await self._flush_failures(conn)
            if self._done_ids:
                await self._cycle(conn, 0)
            if leftover:
                params = {
                    "ids": [j.id for j in leftover],
                    "leases": [j.lease for j in leftover],
                    "delays": [0.0] * len(leftover),
                }
                await conn.execute(self.client.sql["snooze"], params)
                self.stats.released += len(leftover)
                log.info("released %d unfinished job(s) of %s", len(leftover), self.queue)
        except psycopg.Error as exc:
            log.warning("could not release jobs of %s (%s); crash recovery will", self.queue, exc)

    async def _discard(self, conn: psycopg.AsyncConnection[Any] | None) -> None:
        if conn is not None:
            with contextlib.suppress(Exception):
                await self.client.pool.putconn(conn)

    # ------------------------------------------------------------------ heartbeats

    async def _heartbeats(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.2)
            running = list(self._claimed.values())
            now = time.monotonic()
            if not running:
                last = now
                continue
            period = min((j.heartbeat or self.default_heartbeat) / 3 for j in running)
            if now - last < period:
                continue
            last = now
            try:
                async with self.client.pool.connection() as conn:
                    await conn.execute(
                        self.client.sql["heartbeat"],
                        {"ids": [j.id for j in running], "leases": [j.lease for j in running]},
                    )
            except psycopg.Error as exc:
                log.warning("heartbeat for %s failed: %s", self.queue, exc)
