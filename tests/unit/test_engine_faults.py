"""Engine faults found under fault injection, pinned without a database: every long-lived loop
survives errors it did not expect (and a loop that does die is never silent), a handler that
raises ``SystemExit``/``KeyboardInterrupt``/``CancelledError`` uses an attempt instead of
killing its runner or process, shutdown is bounded whatever the store does, and prefetched jobs
go back to the queue at once when stop begins."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

import insightdesk.shared.queue.consumer as consumer_module
import insightdesk.shared.queue.tasks as tasks_module
from insightdesk.shared.queue import Job, JobInfo, JobOptions, JobState, QueueOptions
from insightdesk.shared.queue.consumer import Consumer
from insightdesk.shared.queue.memory import MemoryClaimSession, MemoryStore
from insightdesk.shared.queue.ports import Claimed, ClaimRequest, Completion
from insightdesk.shared.queue.scheduler import CronScheduler
from insightdesk.shared.queue.supervisor import Supervisor
from insightdesk.shared.queue.tasks import Loops
from insightdesk.shared.queue.worker import Worker


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.005)


class _FlakySession:
    """A claim session whose claims raise the store's queued errors first."""

    def __init__(self, inner: MemoryClaimSession, store: FlakyStore) -> None:
        self._inner = inner
        self._store = store

    async def claim(
        self, done: list[Completion], wanted: list[ClaimRequest], *, default_heartbeat: float
    ) -> Claimed:
        if self._store.claim_errors:
            raise self._store.claim_errors.pop(0)
        return await self._inner.claim(done, wanted, default_heartbeat=default_heartbeat)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class FlakyStore(MemoryStore):
    """A memory store that raises queued errors from claims, heartbeats and recovery."""

    def __init__(self) -> None:
        super().__init__()
        self.claim_errors: list[BaseException] = []
        self.heartbeat_errors: list[BaseException] = []
        self.recover_errors: list[BaseException] = []
        self.recovers = 0

    @contextlib.asynccontextmanager
    async def session(self, *, listen: bool) -> AsyncIterator[Any]:
        async with super().session(listen=listen) as inner:
            yield _FlakySession(inner, self)

    async def heartbeat(self, jobs: list[Job]) -> int:
        if self.heartbeat_errors:
            raise self.heartbeat_errors.pop(0)
        return await super().heartbeat(jobs)

    async def recover(self, *, default_heartbeat: float, limit: int) -> list[Any]:
        self.recovers += 1
        if self.recover_errors:
            raise self.recover_errors.pop(0)
        return await super().recover(default_heartbeat=default_heartbeat, limit=limit)


def _now(store: MemoryStore, job_id: uuid.UUID) -> JobInfo:
    """A job as stored right now, without a statement (usable in a predicate)."""
    return store._jobs[job_id].info()


async def _work(consumer: Consumer, queue: str, handler: Any, **kw: Any) -> Worker:
    worker = Worker(consumer, queue, handler, **kw)
    await worker.start()
    return worker


# ---------------------------------------------------------------------- loops survive


async def test_claim_loop_survives_an_unexpected_error_and_logs_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = FlakyStore()
    await store.create_queue("q")
    store.claim_errors.append(RuntimeError("claim bug"))
    consumer = Consumer(store)
    done: list[object] = []

    async def handler(job: Job) -> None:
        done.append(job.data)

    await store.send("q", {"n": 1})
    with caplog.at_level(logging.WARNING):
        worker = await _work(consumer, "q", handler, poll_interval=0.05)
        await until(lambda: done == [{"n": 1}])
    await worker.stop(1)
    failures = [r for r in caplog.records if "claim bug" in r.getMessage() or r.exc_info]
    assert failures and failures[0].levelno >= logging.ERROR
    assert consumer.stats.errors == 1


async def test_heartbeater_survives_an_unexpected_error() -> None:
    store = FlakyStore()
    await store.create_queue("q", QueueOptions(heartbeat=0.3))
    store.heartbeat_errors.append(RuntimeError("heartbeat bug"))
    consumer = Consumer(store)
    release = asyncio.Event()

    async def handler(job: Job) -> None:
        await release.wait()

    await store.send("q", {"n": 1}, JobOptions(heartbeat=0.3))
    worker = await _work(consumer, "q", handler)
    await until(lambda: consumer.heartbeater.beats >= 2)
    release.set()
    await worker.stop(1)


async def test_recovery_loop_survives_an_unexpected_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = FlakyStore()
    store.recover_errors.append(RuntimeError("recover bug"))
    supervisor = Supervisor(store, recover_interval=0.01, maintenance_interval=3600)  # type: ignore[arg-type]
    supervisor.backoff_first = 0.01
    with caplog.at_level(logging.WARNING):
        supervisor.start()
        try:
            await until(lambda: store.recovers >= 3)
        finally:
            await supervisor.stop()
    assert any(r.exc_info for r in caplog.records if "recover" in r.getMessage())


class _CronStore:
    """The store calls a cron tick makes, over one every-second schedule: listings fail first
    with ``errors``, then firing fails with ``fire_errors`` (driver errors that escaped
    wrapping, as a terminated backend's did), then slots fire."""

    schema = "queue"

    def __init__(self, errors: list[BaseException], fire_errors: list[BaseException]) -> None:
        self.errors = errors
        self.fire_errors = fire_errors
        self.listings = 0
        self.last_slot = datetime.now(UTC).replace(microsecond=0)  # as schedule() sets it
        self.fired: list[datetime] = []

    async def list_schedules(self) -> list[dict[str, Any]]:
        self.listings += 1
        if self.errors:
            raise self.errors.pop(0)
        return [
            {
                "name": "every-second",
                "queue": "ticks",
                "cron": "* * * * * *",
                "timezone": "UTC",
                "data": None,
                "options": {},
                "missed": "skip",
                "grace": 60.0,
                "last_slot": self.last_slot,
                "db_now": datetime.now(UTC),
            }
        ]

    async def fire_schedule(
        self, name: str, slot: datetime, queue: str, data: Any, options: Any
    ) -> uuid.UUID | None:
        if self.fire_errors:
            raise self.fire_errors.pop(0)
        self.last_slot = slot
        self.fired.append(slot)
        return uuid.uuid4()

    async def advance_schedule(self, name: str, slot: datetime) -> bool:
        self.last_slot = slot
        return True


class _HasStore:
    def __init__(self, store: _CronStore) -> None:
        self.store = store


async def test_cron_loop_survives_raw_driver_errors_and_the_next_slot_still_fires() -> None:
    store = _CronStore(
        [psycopg.InterfaceError("the connection is closed"), RuntimeError("tick bug")],
        [psycopg.errors.AdminShutdown("terminating connection due to administrator command")],
    )
    cron = CronScheduler(_HasStore(store), tick_interval=0.01)  # type: ignore[arg-type]
    cron.backoff_first = 0.01
    cron.start()
    try:
        await until(lambda: len(store.fired) >= 2, timeout=15)
    finally:
        await cron.stop()
    assert store.fire_errors == [] and cron.loops.dead == {}
    assert store.fired[1] > store.fired[0]


async def test_a_loop_that_dies_is_reported_loudly(caplog: pytest.LogCaptureFixture) -> None:
    loops = Loops()
    seen: list[tuple[str, str]] = []
    loops.on_death(lambda name, reason: seen.append((name, reason)))

    class Escape(BaseException):
        """What no guard catches (asyncio itself re-raises KeyboardInterrupt at once)."""

    async def dies() -> None:
        raise Escape

    with caplog.at_level(logging.ERROR):
        task = loops.spawn("doomed", dies())
        with contextlib.suppress(BaseException):
            await task
        await asyncio.sleep(0)
    assert "doomed" in loops.dead and seen and seen[0][0] == "doomed"
    assert any("doomed" in r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)


async def test_a_loop_stopped_on_purpose_is_not_reported() -> None:
    loops = Loops()

    async def steady() -> None:
        await asyncio.Event().wait()

    task = loops.spawn("steady", steady())
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert loops.dead == {}


# ---------------------------------------------------------------------- poison handlers


@pytest.mark.parametrize("raised", [SystemExit(3), KeyboardInterrupt()])
async def test_a_handler_raising_a_process_exit_uses_an_attempt_and_the_worker_goes_on(
    raised: BaseException,
) -> None:
    store = MemoryStore()
    await store.create_queue("q", QueueOptions(retry_limit=2, retry_delay=0))
    consumer = Consumer(store)
    runs: list[int] = []

    async def handler(job: Job) -> None:
        runs.append(job.retry_count)
        raise raised

    job_id = await store.send("q", {"n": 1})
    assert job_id is not None
    worker = await _work(consumer, "q", handler, concurrency=1, poll_interval=0.02)
    await until(lambda: _now(store, job_id).state is JobState.FAILED)
    info = await store.get_job(job_id)
    assert info.retry_count == 2 and runs == [0, 1, 2]
    assert isinstance(info.output, dict) and info.output["type"] == type(raised).__name__
    assert all(not t.done() for t in worker._runners)
    await worker.stop(1)


async def test_a_handler_raising_cancelled_error_fails_the_job_and_keeps_its_slot() -> None:
    store = MemoryStore()
    await store.create_queue("q", QueueOptions(retry_limit=0))
    consumer = Consumer(store)
    seen: list[object] = []

    async def handler(job: Job) -> None:
        seen.append(job.data)
        if job.data == {"n": 1}:
            raise asyncio.CancelledError

    first = await store.send("q", {"n": 1})
    assert first is not None
    worker = await _work(consumer, "q", handler, concurrency=1, poll_interval=0.02)
    await until(lambda: _now(store, first).state is JobState.FAILED)
    second = await store.send("q", {"n": 2})
    assert second is not None
    await until(lambda: _now(store, second).state is JobState.COMPLETED)
    assert seen == [{"n": 1}, {"n": 2}] and worker.free() == 1
    info = await store.get_job(first)
    assert isinstance(info.output, dict) and info.output["type"] == "CancelledError"
    await worker.stop(1)


# ---------------------------------------------------------------------- prefetch on stop


async def test_prefetched_jobs_go_back_when_stop_begins_not_after_the_running_one() -> None:
    store = MemoryStore()
    await store.create_queue("q")
    consumer = Consumer(store)
    started: list[object] = []
    release = asyncio.Event()

    async def handler(job: Job) -> None:
        started.append(job.data)
        await release.wait()

    ids = [await store.send("q", {"n": n}) for n in range(6)]
    worker = await _work(consumer, "q", handler, concurrency=1, prefetch=5)
    await until(lambda: len(worker.claimed) == 6 and len(started) == 1)
    stopping = asyncio.create_task(worker.stop(30))
    waiting = [i for i in ids if i is not None and _now(store, i).state is JobState.ACTIVE]
    await until(lambda: sum(_now(store, i).state is JobState.CREATED for i in waiting) == 5)
    assert not stopping.done()  # the running job still runs
    release.set()
    await asyncio.wait_for(stopping, 10)
    assert len(started) == 1
    for i in ids:
        assert i is not None
        info = _now(store, i)
        if info.data != started[0]:
            assert info.state is JobState.CREATED and info.retry_count == 0
    assert worker.stats.released == 5


# ---------------------------------------------------------------------- bounded shutdown


class HangingStore(MemoryStore):
    """A store whose database went away: every heartbeat hangs and swallows the first
    cancellations it gets (as a pool's reconnect wait did), every new session hangs."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.unblock = asyncio.Event()

    async def _hang(self) -> None:
        swallowed = 0
        while not self.unblock.is_set():
            try:
                await self.unblock.wait()
            except asyncio.CancelledError:
                swallowed += 1
                if swallowed > 1000:
                    raise

    async def heartbeat(self, jobs: list[Job]) -> int:
        if self.down:
            await self._hang()
        return await super().heartbeat(jobs)

    async def fail_jobs(self, failures: list[Any]) -> int:
        if self.down:
            await self._hang()
        return await super().fail_jobs(failures)

    async def postpone(self, postponed: list[Any]) -> int:
        if self.down:
            await self._hang()
        return await super().postpone(postponed)

    @contextlib.asynccontextmanager
    async def session(self, *, listen: bool) -> AsyncIterator[Any]:
        if self.down:
            await self._hang()
        async with super().session(listen=listen) as inner:
            yield _DownSession(inner, self)


class _DownSession:
    def __init__(self, inner: MemoryClaimSession, store: HangingStore) -> None:
        self._inner = inner
        self._store = store

    async def claim(self, *args: Any, **kw: Any) -> Claimed:
        if self._store.down:
            await self._store._hang()
        return await self._inner.claim(*args, **kw)

    async def settle(self, *args: Any) -> None:
        if self._store.down:
            await self._store._hang()
        await self._inner.settle(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


async def test_stop_is_bounded_while_the_database_hangs_and_swallows_cancellation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(consumer_module, "FLUSH_WAIT", 0.5)
    monkeypatch.setattr(tasks_module, "STOP_WAIT", 0.5)
    store = HangingStore()
    await store.create_queue("q", QueueOptions(heartbeat=0.3))
    consumer = Consumer(store)
    started = asyncio.Event()

    async def handler(job: Job) -> None:
        started.set()
        await asyncio.sleep(3600)

    for n in range(3):
        await store.send("q", {"n": n}, JobOptions(heartbeat=0.3))
    worker = await _work(consumer, "q", handler, concurrency=1, prefetch=2)
    await asyncio.wait_for(started.wait(), 10)
    await until(lambda: consumer.heartbeater.beats >= 1)
    store.down = True
    await asyncio.sleep(0.3)  # the heartbeat and the loop now hang inside the "driver"
    began = time.monotonic()
    await asyncio.wait_for(worker.stop(0.2), 10)
    assert time.monotonic() - began < 5
    store.unblock.set()  # let the abandoned calls end before the event loop closes
    await asyncio.sleep(0.05)
