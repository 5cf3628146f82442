"""The consumer loop over the in-memory store: many queues, one loop, no database, no sleeps
beyond the loop's own wake-ups."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from insightdesk.shared.queue import (
    Job,
    JobOptions,
    JobState,
    QueueOptions,
    Reject,
    RetryLater,
    Snooze,
)
from insightdesk.shared.queue.consumer import Consumer
from insightdesk.shared.queue.memory import MemoryClaimSession, MemoryStore
from insightdesk.shared.queue.outcomes import Outcome
from insightdesk.shared.queue.ports import Claimed, ClaimRequest
from insightdesk.shared.queue.worker import PROMOTE_EVERY, Worker


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Yield to the loop until ``predicate`` holds (a deadline, never a bare long sleep)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.005)


@pytest.fixture
async def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
async def consumer(store: MemoryStore) -> AsyncIterator[Consumer]:
    c = Consumer(store)
    yield c
    await asyncio.gather(*(w.stop(1) for w in c.workers))


async def _work(
    consumer: Consumer, queue: str, handler: Callable[[Job], Awaitable[object]], **kw: object
) -> Worker:
    worker = Worker(consumer, queue, handler, **kw)  # type: ignore[arg-type]
    await worker.start()
    return worker


async def test_one_loop_drains_many_queues_each_within_its_concurrency(
    store: MemoryStore, consumer: Consumer
) -> None:
    running: dict[str, int] = {}
    peak: dict[str, int] = {}
    done: list[str] = []

    async def handler(job: Job) -> None:
        running[job.queue] = running.get(job.queue, 0) + 1
        peak[job.queue] = max(peak.get(job.queue, 0), running[job.queue])
        await asyncio.sleep(0)
        running[job.queue] -= 1
        done.append(job.queue)

    queues = [f"q{i}" for i in range(30)]
    for q in queues:
        await store.create_queue(q)
        for n in range(6):
            await store.send(q, {"n": n})
    for i, q in enumerate(queues):
        await _work(consumer, q, handler, concurrency=1 + i % 3)
    await until(lambda: len(done) == 30 * 6)
    assert all(peak[q] <= 1 + i % 3 for i, q in enumerate(queues))
    assert consumer.task is not None and all(w.task is consumer.task for w in consumer.workers)


async def test_claims_are_spread_over_queues_in_the_same_statement(
    store: MemoryStore, consumer: Consumer
) -> None:
    first: list[str] = []
    release = asyncio.Event()

    async def handler(job: Job) -> None:
        first.append(job.queue)
        await release.wait()

    for q in ("a", "b", "c"):
        await store.create_queue(q)
        for _ in range(10):
            await store.send(q, {})
    workers = [await _work(consumer, q, handler, concurrency=2) for q in ("a", "b", "c")]
    await until(lambda: len(first) == 6)
    # a deep queue does not starve the others: each got exactly its concurrency
    assert sorted(first) == ["a", "a", "b", "b", "c", "c"]
    assert all(len(w.claimed) == 2 for w in workers)
    release.set()


async def test_idle_cost_per_wake_up_does_not_grow_with_the_number_of_queues(
    store: MemoryStore,
) -> None:
    async def handler(job: Job) -> None:
        return None

    per_wait: list[float] = []
    for count in (1, 40):
        consumer = Consumer(store)
        names = [f"idle-{count}-{i}" for i in range(count)]
        for name in names:
            await store.create_queue(name)
            await _work(consumer, name, handler, poll_interval=0.02)
        await until(lambda c=consumer: c.stats.waits >= 15)  # type: ignore[misc]
        start = store.statements
        waits = consumer.stats.waits
        await until(lambda c=consumer, w=waits: c.stats.waits >= w + 10)  # type: ignore[misc]
        per_wait.append((store.statements - start) / (consumer.stats.waits - waits))
        await asyncio.gather(*(w.stop(1) for w in consumer.workers))
    # one claim and one next-due lookup per poll, for 1 queue or 40
    assert per_wait[1] <= 2.5 and per_wait[1] <= per_wait[0] * 1.5 + 0.5


async def test_a_send_to_a_queue_it_does_not_serve_does_not_wake_it(
    store: MemoryStore, consumer: Consumer
) -> None:
    handled: list[Job] = []

    async def handler(job: Job) -> None:
        handled.append(job)

    await store.create_queue("mine")
    await store.create_queue("theirs")
    await _work(consumer, "mine", handler, poll_interval=3600)
    await until(lambda: consumer.stats.waits >= 1)
    cycles, waits = consumer.stats.cycles, consumer.stats.waits
    statements = store.statements
    await store.send("theirs", {})
    await asyncio.sleep(0.05)
    assert (consumer.stats.cycles, consumer.stats.waits) == (cycles, waits)  # slept on
    assert store.statements == statements + 1  # the send only
    job_id = await store.send("mine", {})
    await until(lambda: [j.id for j in handled] == [job_id])  # no poll: the notification
    assert consumer.stats.cycles > cycles


async def test_handler_outcomes_reach_the_store_and_the_hook(
    store: MemoryStore, consumer: Consumer
) -> None:
    await store.create_queue("dead")
    await store.create_queue("q", QueueOptions(retry_limit=1, dead_letter="dead"))
    reported: dict[object, Outcome] = {}

    async def handler(job: Job) -> object:
        kind = job.data["kind"]
        if kind == "snooze" and job.attempt == 1 and job.id not in reported:
            raise Snooze(3600)
        if kind == "retry":
            raise RetryLater(3600, "busy")
        if kind == "reject":
            raise Reject("never")
        if kind == "boom":
            raise RuntimeError("boom")
        return {"ok": kind}

    ids = {k: await store.send("q", {"kind": k}) for k in ("ok", "snooze", "retry", "reject")}
    await _work(
        consumer,
        "q",
        handler,
        on_job_done=lambda job, outcome, _: reported.update({job.id: outcome}),
    )
    await until(lambda: len(reported) == 4)
    await consumer.flush()
    assert reported[ids["ok"]] is Outcome.COMPLETED
    assert reported[ids["snooze"]] is Outcome.SNOOZED
    assert reported[ids["retry"]] is Outcome.RETRIED
    assert reported[ids["reject"]] is Outcome.FAILED
    states = {k: (await store.get_job(i)).state for k, i in ids.items()}  # type: ignore[arg-type]
    assert states == {
        "ok": JobState.COMPLETED,
        "snooze": JobState.CREATED,
        "retry": JobState.RETRY,
        "reject": JobState.FAILED,
    }
    assert (await store.get_job(ids["ok"])).output == {"ok": "ok"}  # type: ignore[arg-type]
    [letter] = await store.claim("dead")
    assert letter.data == {"kind": "reject"}


async def test_one_heartbeat_statement_covers_every_held_job_of_the_process(
    store: MemoryStore, consumer: Consumer
) -> None:
    release = asyncio.Event()
    started: list[Job] = []

    async def handler(job: Job) -> None:
        started.append(job)
        await release.wait()

    for q in ("a", "b", "c", "d"):
        await store.create_queue(q)
        await store.send(q, {}, JobOptions(heartbeat=0.06))  # a beat every 20 ms
        await _work(consumer, q, handler)
    await until(lambda: len(started) == 4)
    before = store.statements
    beats = consumer.heartbeater.beats
    await until(lambda: consumer.heartbeater.beats >= beats + 3)
    touched = [(await store.get_job(j.id)).heartbeat_on for j in started]
    assert len(set(touched)) == 1  # the same statement touched all four
    # heartbeats are the only statements while nothing finishes (plus the odd poll)
    assert store.statements - before <= (consumer.heartbeater.beats - beats) * 2 + 4
    release.set()


async def test_stopping_releases_held_jobs_without_using_an_attempt(
    store: MemoryStore, consumer: Consumer
) -> None:
    await store.create_queue("stuck")
    started = asyncio.Event()

    async def handler(job: Job) -> None:
        started.set()
        await asyncio.Event().wait()

    ids = [await store.send("stuck", {"n": n}) for n in range(4)]
    worker = await _work(consumer, "stuck", handler, concurrency=1, prefetch=2)
    await asyncio.wait_for(started.wait(), 10)
    await asyncio.wait_for(worker.stop(0.05), 10)
    assert worker.stats.released == 3
    for job_id in ids:
        info = await store.get_job(job_id)  # type: ignore[arg-type]
        assert info.state is JobState.CREATED and info.retry_count == 0
    assert consumer.task is None  # the last worker gone, the loop ended


async def test_two_workers_of_one_queue_share_its_claims(
    store: MemoryStore, consumer: Consumer
) -> None:
    seen: dict[str, int] = {"w1": 0, "w2": 0}
    release = asyncio.Event()

    def handler(tag: str) -> Callable[[Job], Awaitable[None]]:
        async def handle(job: Job) -> None:
            seen[tag] += 1
            await release.wait()

        return handle

    await store.create_queue("shared")
    for _ in range(10):
        await store.send("shared", {})
    await _work(consumer, "shared", handler("w1"), concurrency=2)
    await _work(consumer, "shared", handler("w2"), concurrency=3)
    await until(lambda: seen["w1"] + seen["w2"] == 5)
    assert seen == {"w1": 2, "w2": 3}
    release.set()
    await until(lambda: seen["w1"] + seen["w2"] == 10)


@pytest.fixture
def asks(monkeypatch: pytest.MonkeyPatch, consumer: Consumer) -> list[int]:
    """Every claim round trip takes 20 ms (one over the network takes a few); records, for each
    claim, the jobs the process would hold if it got all it asked for."""
    claim = MemoryClaimSession.claim
    seen: list[int] = []

    async def slow(
        self: MemoryClaimSession, done: Any, wanted: list[ClaimRequest], **kwargs: Any
    ) -> Claimed:
        held = sum(len(w.claimed) for w in consumer.workers)
        seen.append(held + sum(r.limit for r in wanted))
        await asyncio.sleep(0.02)
        return await claim(self, done, wanted, **kwargs)

    monkeypatch.setattr(MemoryClaimSession, "claim", slow)
    return seen


async def _drain(
    store: MemoryStore, consumer: Consumer, pause: float, jobs: int, **kw: object
) -> tuple[int, Worker]:
    """Drain ``jobs`` jobs with handlers taking ``pause`` s; the most handlers running at once."""
    queue = f"q{pause}".replace(".", "_")
    await store.create_queue(queue)
    for n in range(jobs):
        await store.send(queue, {"n": n})
    running = peak = done = 0

    async def handler(job: Job) -> None:
        nonlocal running, peak, done
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(pause)
        running -= 1
        done += 1

    worker = await _work(consumer, queue, handler, concurrency=4, **kw)
    await until(lambda: done == jobs)
    return peak, worker


async def test_automatic_prefetch_claims_ahead_while_handlers_beat_the_claim_round_trip(
    store: MemoryStore, consumer: Consumer, asks: list[int]
) -> None:
    running, worker = await _drain(store, consumer, 0.004, 100)
    assert worker.prefetch is None  # the default
    assert 0 < worker.handler_time < consumer.claim_time
    assert asks[0] == 4  # nothing measured yet: the first claim is for the free runners only
    assert max(asks) == 8  # then claims ran ahead of the handlers, up to concurrency ahead
    assert running <= 4


async def test_automatic_prefetch_holds_nothing_ahead_for_handlers_slower_than_a_claim(
    store: MemoryStore, consumer: Consumer, asks: list[int]
) -> None:
    running, worker = await _drain(store, consumer, 0.05, 24)
    assert worker.handler_time > consumer.claim_time > 0
    assert max(asks) == 4 and running <= 4


async def test_prefetch_zero_never_claims_ahead_even_for_quick_handlers(
    store: MemoryStore, consumer: Consumer, asks: list[int]
) -> None:
    running, worker = await _drain(store, consumer, 0.004, 60, prefetch=0)
    assert worker.handler_time < consumer.claim_time
    assert max(asks) == 4 and running <= 4
    assert worker.ahead() == 0


async def test_a_worker_with_a_fixed_prefetch_holds_exactly_that_many_ahead(
    consumer: Consumer,
) -> None:
    async def handler(job: Job) -> None:
        return None

    worker = Worker(consumer, "fixed", handler, concurrency=3, prefetch=2)
    worker.handler_time, consumer.claim_time = 1.0, 0.001  # slow handlers: automatic would say 0
    assert worker.ahead() == 2 and worker.free() == 5
    consumer.claim_time = 0.0
    auto = Worker(consumer, "auto", handler, concurrency=3)
    assert auto.ahead() == 0  # nothing measured yet: nothing ahead
    auto.handler_time = 0.0005
    assert auto.ahead() == 0  # no claim measured yet
    consumer.claim_time = 0.002
    assert auto.ahead() == 3 and auto.free() == 6
    auto.handler_time = 0.01
    assert auto.ahead() == 0 and auto.free() == 3


async def test_a_busy_queue_promotes_due_jobs_on_a_cadence_and_an_idle_one_when_due(
    store: MemoryStore, consumer: Consumer, monkeypatch: pytest.MonkeyPatch
) -> None:
    claim = MemoryClaimSession.claim
    promotes: list[tuple[float, bool]] = []

    async def spy(
        self: MemoryClaimSession, done: Any, wanted: list[ClaimRequest], **kwargs: Any
    ) -> Claimed:
        if wanted:
            promotes.append((time.monotonic(), any(r.promote for r in wanted)))
        return await claim(self, done, wanted, **kwargs)

    monkeypatch.setattr(MemoryClaimSession, "claim", spy)
    handled: list[Any] = []

    async def handler(job: Job) -> None:
        handled.append(job.data)

    await store.create_queue("q")
    await store.send("q", "delayed", JobOptions(start_after=0.05))
    for n in range(3000):
        await store.send("q", n)
    began = time.monotonic()
    await _work(consumer, "q", handler, concurrency=10, poll_interval=5.0)
    await until(lambda: len(handled) == 3001)
    busy = time.monotonic() - began
    # while claims come back full, one in PROMOTE_EVERY seconds promotes (the first included)
    promoting = [t for t, p in promotes if p]
    assert len(promoting) <= 2 + busy / PROMOTE_EVERY
    assert len(promotes) > len(promoting)
    # idle now (its last claim came back short): a delayed job is claimed when due, by a
    # promoting claim, not at the 5 s poll
    sent = time.monotonic()
    await store.send("q", "later", JobOptions(start_after=0.2))
    await until(lambda: handled[-1] == "later", timeout=3.0)
    assert 0.15 <= time.monotonic() - sent < 2.0
    assert promotes[-1][1]


async def test_a_worker_added_while_the_loop_subscribes_is_heard_without_waiting_for_the_poll(
    store: MemoryStore, consumer: Consumer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker joins while the loop is LISTENing for the others: the loop must subscribe
    again before it sleeps, or a send to the new queue is heard only at the next poll."""
    listen_to = MemoryClaimSession.listen_to
    in_listen, release = asyncio.Event(), asyncio.Event()

    async def held_first(self: MemoryClaimSession, queues: Any) -> None:
        if not release.is_set():
            in_listen.set()
            await release.wait()
        await listen_to(self, queues)

    monkeypatch.setattr(MemoryClaimSession, "listen_to", held_first)
    handled: list[str] = []

    async def handler(job: Job) -> None:
        handled.append(job.queue)

    for q in ("b", "c"):
        await store.create_queue(q)
    await _work(consumer, "b", handler, poll_interval=60)
    await in_listen.wait()
    await _work(consumer, "c", handler, poll_interval=60)  # the loop is subscribing for b
    release.set()
    waits = consumer.stats.waits
    await until(lambda: consumer.stats.waits > waits + 1)  # asleep again, both queues idle
    await store.send("c", {})
    await until(lambda: handled == ["c"], timeout=3.0)
