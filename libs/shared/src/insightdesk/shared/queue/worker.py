"""A worker: one queue's handler, its runners and the rules that turn what a handler did into an
:class:`~insightdesk.shared.queue.outcomes.Outcome`.

A worker does not talk to the database. It belongs to a
:class:`~insightdesk.shared.queue.consumer.Consumer`, whose single loop claims for every worker
of the process in one statement (each queue up to its worker's free slots) and hands the jobs
over; ``concurrency`` long-lived *runner* coroutines take them from an in-memory queue and call
the handler (no task per job). What the handler decided goes to the consumer's
:class:`~insightdesk.shared.queue.acks.AckBuffer`.

With ``prefetch`` > 0 the worker may hold that many claimed jobs beyond ``concurrency`` waiting
for a free handler, so the next claim overlaps the running handlers (at most ``concurrency``
handlers still run at once); ``prefetch=0`` never holds a job no handler is free for. The
default, ``None``, decides by measurement: the worker claims up to ``concurrency`` jobs ahead
only while its handlers take less time, on average, than the consumer's claim round trip.
Then a prefetched job waits for a runner less than a claim would take to fetch it anyway,
and the next claim runs on the database while the handlers run in the process (with quick
handlers the claim round trip, not the handlers, limits throughput). With slower handlers it
holds nothing ahead, so a job is never kept waiting behind busy handlers when an idle worker
elsewhere could take it.

With ``batch=True`` the handler takes a *list* of jobs: each claim's rows for the queue (at most
``batch_size``) go to one call, ``concurrency`` counts calls in flight and ``prefetch`` claimed
batches held beyond them. The call's outcome applies to every job of the batch: a return
completes them all (a list as long as the batch gives job ``i`` output ``i``; any other value is
every job's output), an exception or ``Snooze``/``RetryLater``/``Reject`` applies to each job.
The batch runs under the smallest ``expire_in`` of its jobs.

On stop the worker stops claiming, hands the jobs it holds but has not started (prefetched)
back to the queue at once, lets in-flight jobs finish within a timeout and releases whatever is
still held back to the queue; a released job uses no attempt.

A handler that raises ``SystemExit``, ``KeyboardInterrupt`` or ``asyncio.CancelledError`` (one
not caused by the worker's own shutdown cancelling its runner) fails its job like any other
exception, using an attempt, and the runner goes on: a poison job reaches its retry limit and
its dead-letter queue instead of taking the process down (and being released, unattempted, by
the shutdown) on every delivery.
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
from typing import TYPE_CHECKING, Any, cast

from insightdesk.shared.errors import InvalidArgument, InvalidOutcome
from insightdesk.shared.queue.jobs import Job
from insightdesk.shared.queue.options import validate_name
from insightdesk.shared.queue.outcomes import Outcome, Reject, RetryLater, Snooze, checked_delay
from insightdesk.shared.queue.payloads import to_json, without_surrogates
from insightdesk.shared.queue.ports import ClaimRequest, Completion, Failure, Postponed
from insightdesk.shared.queue.tasks import STOP_WAIT

if TYPE_CHECKING:
    from insightdesk.shared.queue.consumer import Consumer

log = logging.getLogger(__name__)

Handler = Callable[[Job], Awaitable[Any]]
BatchHandler = Callable[[list[Job]], Awaitable[Any]]
JobDoneHook = Callable[[Job, Outcome, float], None]

DEFAULT_BATCH_SIZE = 10
"""Jobs per call of a batch handler when ``batch_size`` is not given."""

SMOOTHING = 0.1
"""Weight of the newest sample in the handler-time and claim-time moving averages."""


def smoothed(average: float, sample: float) -> float:
    """``average`` moved towards ``sample`` (the first sample, while the average is 0)."""
    return sample if average == 0.0 else average + (sample - average) * SMOOTHING


DEFAULT_HEARTBEAT = 15.0
"""Seconds without a heartbeat after which an active job is presumed dead (per-job override)."""

PROMOTE_EVERY = 0.1
"""Seconds between the claims of a busy queue that also release its due waiting jobs (delayed,
retrying, snoozed). In between, while its claims come back full, the consumer sends the cheaper
claim of ready jobs only, so a job that comes due while ready jobs are queued ahead of it is
claimable up to this much later. A queue whose claim comes back short has its next due instant
looked up, and every claim from that instant on promotes: an idle queue's delayed job is
claimed exactly when due."""


@dataclass(slots=True)
class WorkerStats:
    claimed: int = 0
    completed: int = 0
    failed: int = 0
    snoozed: int = 0
    released: int = 0


def error_document(exc: BaseException) -> dict[str, Any]:
    """What is stored of a failed attempt. Text PostgreSQL cannot store (a lone surrogate in a
    message or traceback) is replaced by U+FFFD, so an odd message never loses the job."""
    return {
        "type": type(exc).__name__,
        "message": without_surrogates(str(exc)),
        "traceback": without_surrogates("".join(traceback.format_exception(exc, limit=20))[-4000:]),
    }


def _batch_outputs(output: Any, size: int) -> list[str | None]:
    """The stored output of each job of a batch whose handler returned ``output``."""
    if isinstance(output, list | tuple) and len(output) == size:
        return [
            None if o is None else to_json(o, "handler output", replace_surrogates=True)
            for o in output
        ]
    text = None if output is None else to_json(output, "handler output", replace_surrogates=True)
    return [text] * size


def _failed(job: Job) -> Outcome:
    return Outcome.RETRIED if job.retry_count < job.retry_limit else Outcome.FAILED


class Worker:
    """Runs ``handler`` for one queue with at most ``concurrency`` calls in flight."""

    def __init__(
        self,
        consumer: Consumer,
        queue: str,
        handler: Handler | BatchHandler,
        *,
        concurrency: int = 10,
        batch_size: int | None = None,
        batch: bool = False,
        prefetch: int | None = None,
        poll_interval: float = 2.0,
        shutdown_timeout: float = 30.0,
        listen: bool = True,
        keyed: bool = False,
        on_job_done: JobDoneHook | None = None,
    ) -> None:
        validate_name(queue)
        if concurrency < 1:
            raise InvalidArgument(f"concurrency must be >= 1, got {concurrency}")
        if prefetch is not None and prefetch < 0:
            raise InvalidArgument(f"prefetch must be >= 0, got {prefetch}")
        if batch_size is not None and batch_size < 1:
            raise InvalidArgument(f"batch_size must be >= 1, got {batch_size}")
        if poll_interval <= 0:
            raise InvalidArgument(f"poll_interval must be > 0, got {poll_interval}")
        self.consumer = consumer
        self.queue = queue
        self.handler = handler
        self.concurrency = concurrency
        self.batch = batch
        self.batch_size = batch_size or (DEFAULT_BATCH_SIZE if batch else concurrency)
        self.prefetch = prefetch
        self.poll_interval = poll_interval
        self.shutdown_timeout = shutdown_timeout
        self.listen = listen
        self.keyed = keyed
        self.stats = WorkerStats()
        self.handler_time = 0.0
        """Moving average of a handler call's seconds (0 until the first call ends)."""
        self._on_job_done = on_job_done
        self._ready: asyncio.Queue[list[Job]] = asyncio.Queue()
        self._batches = 0  # claimed calls (a job, or a batch) running or waiting
        self.claimed: dict[uuid.UUID, Job] = {}  # running or waiting: all this worker holds
        self._idle = asyncio.Event()
        self._runners: list[asyncio.Task[None]] = []
        self.stopping = False  # no more claims
        self.closed = False  # runners gone: jobs still arriving go back to the queue
        # claim scheduling, driven by the consumer loop (monotonic instants)
        self.maybe_ready = True
        self.next_due: float | None = None
        self.next_poll = 0.0
        self.next_promote = 0.0

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self._runners:
            return
        self._runners = [
            asyncio.create_task(self._runner(), name=f"worker:{self.queue}:{i}")
            for i in range(self.concurrency)
        ]
        await self.consumer.add(self)

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The consumer loop serving this worker (shared with the process's other workers)."""
        return self.consumer.task

    async def stop(self, timeout: float | None = None) -> None:
        """Stop claiming; let in-flight jobs finish within ``timeout``; release the rest."""
        if not self._runners or self.stopping:
            return
        timeout = self.shutdown_timeout if timeout is None else timeout
        self.stopping = True
        self._release_waiting()
        if self.claimed:
            self._idle.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), timeout)
        self.closed = True
        for task in self._runners:
            task.cancel()
        _, pending = await asyncio.wait(self._runners, timeout=STOP_WAIT)
        if pending:  # a handler swallowed its cancellation: its job is released all the same
            log.error("%d handler(s) of %s ignored their cancellation", len(pending), self.queue)
        leftover = list(self.claimed.values())
        self.claimed.clear()
        while not self._ready.empty():
            self._ready.get_nowait()
        self._batches = 0
        if leftover:
            self.consumer.acks.postponed.extend(Postponed(job, 0.0) for job in leftover)
            self.stats.released += len(leftover)
            log.info("releasing %d unfinished job(s) of %s", len(leftover), self.queue)
        await self.consumer.remove(self)

    def _release_waiting(self) -> None:
        """Hand back, without using an attempt, the claimed jobs no runner has started."""
        released: list[Job] = []
        while not self._ready.empty():
            jobs = self._ready.get_nowait()
            self._batches -= 1 if self.batch else len(jobs)
            for job in jobs:
                del self.claimed[job.id]
            released.extend(jobs)
        if released:
            self.consumer.acks.postponed.extend(Postponed(job, 0.0) for job in released)
            self.stats.released += len(released)
            log.info("releasing %d waiting job(s) of %s", len(released), self.queue)
            self.consumer.wake()
        if not self.claimed:
            self._idle.set()

    # ------------------------------------------------------------------ claims

    def ahead(self) -> int:
        """Claimed jobs (with ``batch``: lists) this worker may hold beyond ``concurrency``."""
        if self.prefetch is not None:
            return self.prefetch
        # automatic: only while a handler call is quicker than a claim round trip
        took = self.handler_time
        return self.concurrency if 0.0 < took < self.consumer.claim_time else 0

    def free(self) -> int:
        """How many jobs the next claim may bring this worker."""
        if self.stopping:
            return 0
        if self.batch:
            return (self.concurrency + self.ahead() - self._batches) * self.batch_size
        return self.concurrency + self.ahead() - len(self.claimed)

    def request(self, now: float) -> ClaimRequest:
        """What the next claim asks for this worker; ``now`` (monotonic) decides whether it
        also promotes due waiting jobs (see :data:`PROMOTE_EVERY`)."""
        came_due = self.next_due is not None and now >= self.next_due
        promote = came_due or now >= self.next_promote
        if promote:
            self.next_promote = now + PROMOTE_EVERY
        if came_due:  # this claim promotes it; a short claim looks up the next instant
            self.next_due = None
        return ClaimRequest(self.queue, min(self.free(), self.batch_size), self.keyed, promote)

    def accept(self, jobs: list[Job]) -> None:
        """Take jobs the consumer claimed for this queue."""
        self.stats.claimed += len(jobs)
        for job in jobs:
            self.claimed[job.id] = job
        if self.batch:
            self._batches += 1
            self._ready.put_nowait(jobs)
        else:
            self._batches += len(jobs)
            for job in jobs:
                self._ready.put_nowait([job])

    # ------------------------------------------------------------------ runners

    async def _runner(self) -> None:
        ready = self._ready
        acks = self.consumer.acks  # its lists are swapped out on each take: never cache them
        batch = self.batch
        while True:
            jobs = await ready.get()
            started = time.perf_counter()
            expire_in = jobs[0].expire_in if len(jobs) == 1 else min(j.expire_in for j in jobs)
            deadline = asyncio.timeout(expire_in)
            try:
                async with deadline:
                    if batch:
                        output = await cast("BatchHandler", self.handler)(jobs)
                    else:
                        output = await cast("Handler", self.handler)(jobs[0])
                texts = _batch_outputs(output, len(jobs)) if batch else [_text(output)]
            except asyncio.CancelledError as exc:
                runner = asyncio.current_task()
                if self.closed or (runner is not None and runner.cancelling()):
                    # Shutdown timed out while this ran: the jobs stay held, stop() releases them.
                    raise
                log.exception(
                    "%d job(s) on %s: the handler raised CancelledError", len(jobs), self.queue
                )
                self._finished(jobs, self._record_failure(jobs, exc, deadline, expire_in), started)
                continue
            except (SystemExit, KeyboardInterrupt) as exc:
                # one job's code does not end the process: the attempt counts, the runner goes on
                log.exception("%d job(s) on %s: the handler tried to exit", len(jobs), self.queue)
                self._finished(jobs, self._record_failure(jobs, exc, deadline, expire_in), started)
                continue
            except Exception as exc:  # noqa: BLE001  # every handler error has an outcome
                self._finished(jobs, self._record_failure(jobs, exc, deadline, expire_in), started)
                continue
            done = acks.done
            for job, text in zip(jobs, texts, strict=True):
                done.append(Completion(job.id, job.lease, text))
            self.stats.completed += len(jobs)
            self._finished(jobs, None, started)

    def _record_failure(
        self, jobs: list[Job], exc: BaseException, deadline: asyncio.Timeout, expire_in: float
    ) -> list[Outcome]:
        """Map what a handler raised onto the engine outcome of each of ``jobs``; the one place
        these rules live for single jobs and batches alike."""
        acks = self.consumer.acks
        if isinstance(exc, Snooze | RetryLater):
            try:
                checked_delay(exc.delay)
            except InvalidOutcome as invalid:  # changed after construction: fail this job only
                invalid.__cause__ = exc
                exc = invalid
        if isinstance(exc, Snooze) and not exc.count_attempt:
            acks.postponed.extend(Postponed(job, exc.delay) for job in jobs)
            self.stats.snoozed += len(jobs)
            return [Outcome.SNOOZED] * len(jobs)
        delay: float | None = None
        final = False
        err: BaseException = exc
        if isinstance(exc, Snooze | RetryLater):
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
        acks.failures.extend(Failure(job, document, delay, final) for job in jobs)
        self.stats.failed += len(jobs)
        if isinstance(exc, Snooze):
            return [Outcome.SNOOZED] * len(jobs)
        return [Outcome.FAILED if final else _failed(job) for job in jobs]

    def _finished(self, jobs: list[Job], outcomes: list[Outcome] | None, started: float) -> None:
        """Forget finished jobs; ``outcomes`` None means every job completed."""
        claimed = self.claimed
        for job in jobs:
            claimed.pop(job.id, None)  # gone already if stop() abandoned this runner
        self._batches -= 1 if self.batch else len(jobs)
        if not claimed:
            self._idle.set()
        self.consumer.wake()
        elapsed = time.perf_counter() - started
        self.handler_time = smoothed(self.handler_time, elapsed)
        if self._on_job_done is not None:
            for i, job in enumerate(jobs):
                self._on_job_done(
                    job, Outcome.COMPLETED if outcomes is None else outcomes[i], elapsed
                )


def _text(output: Any) -> str | None:
    return None if output is None else to_json(output, "handler output", replace_surrogates=True)
