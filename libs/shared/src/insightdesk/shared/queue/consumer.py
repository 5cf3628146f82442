"""The consumer: one claim loop per process serving any number of queues on one connection.

Each cycle the loop sends a single statement that completes the jobs finished since the last
cycle and claims, for every worker with free slots and reason to look (a NOTIFY for its queue, a
delayed job now due, or its poll interval passed), up to its free slots: claims are spread over
the queues by construction and each honours its worker's ``concurrency``. Failures and
postponements go in their own (rarer) statement; one :class:`Heartbeater` keeps every held job
of the process alive with one statement per period.

When nothing is ready the loop asks once, for all the queues that came up short, when their next
delayed job is due, and sleeps until the first of: a NOTIFY for a queue it serves (its session
LISTENs on the channels of those queues only, so a send to another queue wakes no one here), a
runner finishing, a due instant, or a poll deadline. Poll deadlines are coalesced: a timeout polls
every idle queue whose deadline falls within half an interval, so idle cost is about two
statements per poll interval, however many queues the process serves.

The loop survives every failure of a cycle (STYLE rule 19): a lost connection or a database
error is logged as a warning, anything else as an error with its traceback, and the loop opens
a new session after a capped exponential backoff. Stopping is bounded: what stopping workers
left is sent within :data:`FLUSH_WAIT` while the database answers; after that the loop is
cancelled (abandoned if the driver swallows it) and crash recovery takes the jobs over.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from insightdesk.shared.errors import QueueError
from insightdesk.shared.queue.acks import AckBuffer
from insightdesk.shared.queue.heartbeater import Heartbeater
from insightdesk.shared.queue.jobs import Job
from insightdesk.shared.queue.ports import ClaimRequest, ClaimSession, JobStore, Postponed
from insightdesk.shared.queue.tasks import Backoff, Loops, cancel_and_wait, log_failure, within
from insightdesk.shared.queue.worker import DEFAULT_HEARTBEAT, smoothed

if TYPE_CHECKING:
    from insightdesk.shared.queue.worker import Worker

log = logging.getLogger(__name__)

FLUSH_WAIT = 15.0
"""Longest wait for the loop to send what stopping workers left (e.g. while the database is
down); after it, crash recovery takes over those jobs."""

IDLE_WAIT = 60.0
"""Longest sleep of a loop with no worker able to take jobs (a runner finishing wakes it)."""


@dataclass(slots=True)
class ConsumerStats:
    cycles: int = 0
    """Claim statements sent (each also completes the finished jobs it carries)."""
    waits: int = 0
    """Times the loop went to sleep."""
    lookups: int = 0
    """Next-due statements sent."""
    errors: int = 0


class Consumer:
    """Claims for every :class:`~insightdesk.shared.queue.worker.Worker` added to it."""

    def __init__(
        self,
        store: JobStore,
        *,
        default_heartbeat: float = DEFAULT_HEARTBEAT,
        listen: bool = True,
        loops: Loops | None = None,
    ) -> None:
        self.store = store
        self.loops = Loops() if loops is None else loops
        self.default_heartbeat = default_heartbeat
        self.listen = listen
        self.acks = AckBuffer()
        self.stats = ConsumerStats()
        self.claim_time = 0.0
        """Moving average of a claim round trip's seconds (0 until the first claim)."""
        self.heartbeater = Heartbeater(
            store, self.held, default_heartbeat=default_heartbeat, loops=self.loops
        )
        self._workers: list[Worker] = []
        self._roster = 0  # bumped whenever the set of workers changes (what to LISTEN on)
        self._wake = asyncio.Event()
        self._flushed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stuck = False  # a flush gave up (database down): stopping waits no more

    # ------------------------------------------------------------------ workers

    @property
    def task(self) -> asyncio.Task[None] | None:
        return self._task

    @property
    def workers(self) -> list[Worker]:
        return list(self._workers)

    def held(self) -> list[Job]:
        """Every job the process's workers hold (running or waiting for a runner)."""
        return [job for w in self._workers for job in w.claimed.values()]

    def wake(self) -> None:
        self._wake.set()

    async def add(self, worker: Worker) -> None:
        if worker not in self._workers:
            self._workers.append(worker)
            self._roster += 1
        self.heartbeater.default_heartbeat = self.default_heartbeat
        self.heartbeater.start()
        if self._task is None or self._task.done():
            self._stuck = False
            self._task = self.loops.spawn("consumer", self._loop(), may_return=True)
        self._wake.set()

    async def remove(self, worker: Worker) -> None:
        """Forget ``worker`` once what it left in the ack buffer reached the store (or
        :data:`FLUSH_WAIT` passed: the database does not answer)."""
        settled = await self.flush()
        if worker in self._workers:
            self._workers.remove(worker)
            self._roster += 1
        if not self._workers:
            self._wake.set()
            task, self._task = self._task, None
            stops: list[Coroutine[Any, Any, object]] = [self.heartbeater.stop()]
            if task is not None:
                done, _ = await asyncio.wait([task], timeout=FLUSH_WAIT if settled else 0)
                if not done:
                    log.warning("consumer loop did not end in time (database down?); cancelled")
                    settled = False
                    stops.append(cancel_and_wait(task))
            await asyncio.gather(*stops)
        if settled:
            await self.flush()

    async def flush(self) -> bool:
        """Wait until the ack buffer has been sent (directly, if the loop is not running), at
        most :data:`FLUSH_WAIT` seconds; False when it could not be (crash recovery will)."""
        while self.acks:
            if self._task is None or self._task.done():
                if self._stuck:  # already waited once for this database: do not wait again
                    return False
                self._stuck = not await within(
                    "settling jobs without the consumer loop",
                    FLUSH_WAIT,
                    self._settle_without_loop(),
                )
                return not self._stuck
            self._flushed.clear()
            self._wake.set()
            try:
                await asyncio.wait_for(self._flushed.wait(), FLUSH_WAIT)
            except TimeoutError:
                log.warning("consumer could not settle its jobs in time; crash recovery will")
                self._stuck = True
                return False
        return True

    async def _settle_without_loop(self) -> None:
        done = self.acks.take_done()
        failures, postponed = self.acks.take_settlements()
        try:
            if done:
                async with self.store.session(listen=False) as session:
                    await session.claim(done, [], default_heartbeat=self.default_heartbeat)
            await self.store.fail_jobs(failures)
            await self.store.postpone(postponed)
        except QueueError as exc:
            log.warning("could not settle %d job(s) (%s); crash recovery will", len(done), exc)

    # ------------------------------------------------------------------ the loop

    async def _loop(self) -> None:
        backoff = Backoff(0.05, 5.0)
        while self._workers or self.acks:
            try:
                async with self.store.session(listen=self.listen) as session:
                    backoff.reset()
                    for worker in self._workers:
                        worker.maybe_ready = True  # anything sent while we were not listening
                    await self._serve(session)
                    return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001  # the claim loop must survive any cycle
                self.stats.errors += 1
                await asyncio.sleep(log_failure(log, "consumer cycle", exc, backoff))

    def _wanting(self, now: float) -> Iterator[Worker]:
        for worker in self._workers:
            if worker.free() <= 0:
                continue
            due = worker.next_due is not None and now >= worker.next_due
            if worker.maybe_ready or due or now >= worker.next_poll:
                yield worker

    async def _serve(self, session: ClaimSession) -> None:
        acks = self.acks
        heard = -1  # the roster the session LISTENs for
        while self._workers or acks:
            # cleared before this cycle looks at the workers, so a wake-up that comes while it
            # runs (a worker added, a flush asked for) ends the next wait at once, not at the poll
            self._wake.clear()
            if heard != self._roster:
                # before the claim: a job sent after it announces itself on a channel we hear
                heard = self._roster
                await session.listen_to({w.queue for w in self._workers if w.listen})
            if acks.unsettled:
                failures, postponed = acks.take_settlements()
                try:
                    await session.settle(failures, postponed)
                except BaseException:
                    acks.restore(failures=failures, postponed=postponed)
                    raise
                # a retry or snooze may be due soon: look again (and ask when)
                touched = {f.job.queue for f in failures} | {p.job.queue for p in postponed}
                for worker in self._workers:
                    if worker.queue in touched:
                        worker.maybe_ready = True
            now = time.monotonic()
            wanting = [(w, w.request(now)) for w in self._wanting(now)]
            requests = _merged([r for _, r in wanting])
            if requests or acks.done:
                done = acks.take_done()
                started = time.perf_counter()
                try:
                    claimed = await session.claim(
                        done, requests, default_heartbeat=self.default_heartbeat
                    )
                except BaseException:
                    acks.restore(done=done)
                    raise
                if requests:
                    self.claim_time = smoothed(self.claim_time, time.perf_counter() - started)
                self.stats.cycles += 1
                if await self._deliver(session, wanting, claimed.jobs, claimed.contended):
                    continue
            if not acks:
                self._flushed.set()
                if not self._workers:
                    return
            if acks:
                continue
            self.stats.waits += 1
            notified = await session.wait(self._wake, self._timeout())
            self._on_wakeup(notified)

    async def _deliver(
        self,
        session: ClaimSession,
        wanting: list[tuple[Worker, ClaimRequest]],
        jobs: list[Job],
        contended: frozenset[str],
    ) -> bool:
        """Hand claimed jobs to their workers; True when some queue may have more ready."""
        by_queue: dict[str, list[Job]] = {}
        for job in jobs:
            by_queue.setdefault(job.queue, []).append(job)
        more = False
        short: list[Worker] = []
        now = time.monotonic()
        short_queues = {
            request.queue
            for request in _merged([r for _, r in wanting])
            if request.queue not in contended
            and len(by_queue.get(request.queue, ())) < request.limit
        }
        for worker, request in wanting:
            # several workers of one queue share its claim, each up to what it asked for
            pool = by_queue.get(worker.queue, [])
            got, by_queue[worker.queue] = pool[: request.limit], pool[request.limit :]
            if got and worker.stopping:  # it began to stop while the claim ran: give them back
                worker.stats.released += len(got)
                self.acks.postponed.extend(Postponed(job, 0.0) for job in got)
                continue
            if got:
                worker.accept(got)
            worker.next_poll = now + worker.poll_interval
            if worker.queue in short_queues:
                worker.maybe_ready = False
                short.append(worker)
            else:
                worker.maybe_ready = True
                more = True
        for queue, left in by_queue.items():  # the worker went away meanwhile: give them back
            if left:
                log.info("releasing %d job(s) of %s: its worker stopped", len(left), queue)
            self.acks.postponed.extend(Postponed(job, 0.0) for job in left)
        if jobs:
            self.heartbeater.claimed(jobs)
        if short:
            self.stats.lookups += 1
            due = await session.next_due(sorted(short_queues))
            now = time.monotonic()
            for worker in short:
                seconds = due.get(worker.queue)
                worker.next_due = None if seconds is None else now + seconds
        return more

    def _timeout(self) -> float:
        now = time.monotonic()
        deadline = now + IDLE_WAIT
        for worker in self._workers:
            if worker.free() <= 0:
                continue
            deadline = min(deadline, worker.next_poll)
            if worker.next_due is not None:
                deadline = min(deadline, worker.next_due)
        return max(0.0, deadline - now)

    def _on_wakeup(self, notified: set[str]) -> None:
        now = time.monotonic()
        for worker in self._workers:
            if worker.listen and worker.queue in notified:
                worker.maybe_ready = True
            # coalesce polls: whoever is nearly due polls with the one that is due
            if worker.next_poll - now <= worker.poll_interval / 2:
                worker.next_poll = min(worker.next_poll, now)


def _merged(requests: list[ClaimRequest]) -> list[ClaimRequest]:
    """One request per queue (workers of the same queue add up their limits)."""
    merged: dict[str, ClaimRequest] = {}
    for r in requests:
        seen = merged.get(r.queue)
        merged[r.queue] = (
            r
            if seen is None
            else ClaimRequest(r.queue, seen.limit + r.limit, r.keyed, r.promote or seen.promote)
        )
    return list(merged.values())
