"""A bad handler outcome fails that job only: the claim loop goes on and other jobs are unaffected.

Out-of-range delays (``inf``, ``nan``, beyond the 10-year bound) and text PostgreSQL cannot store
(lone surrogates) used to raise inside the consumer's settle or claim statement and end the loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from insightdesk.shared.errors import InvalidArgument, InvalidOutcome
from insightdesk.shared.queue import Job, JobState, QueueOptions, RetryLater, Snooze
from insightdesk.shared.queue.consumer import Consumer
from insightdesk.shared.queue.memory import MemoryStore
from insightdesk.shared.queue.options import MAX_DURATION
from insightdesk.shared.queue.worker import Worker, error_document


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.005)


@pytest.fixture
async def consumer() -> AsyncIterator[Consumer]:
    c = Consumer(MemoryStore())
    yield c
    await asyncio.gather(*(w.stop(1) for w in c.workers))


@pytest.mark.parametrize("delay", [float("inf"), float("nan"), -1.0, 1e13, MAX_DURATION + 1])
def test_outcomes_refuse_a_delay_out_of_range(delay: float) -> None:
    with pytest.raises(InvalidOutcome, match="delay"):
        Snooze(delay)
    with pytest.raises(InvalidOutcome, match="delay"):
        RetryLater(delay)
    assert issubclass(InvalidOutcome, InvalidArgument)
    assert Snooze(MAX_DURATION).delay == MAX_DURATION


def test_an_error_document_never_carries_a_lone_surrogate() -> None:
    doc = error_document(RuntimeError("bad \ud800 text"))
    assert doc["message"] == "bad \ufffd text"
    assert "\ud800" not in doc["traceback"] and "\ufffd" in doc["traceback"]


def _tampered(outcome: Snooze | RetryLater) -> Snooze | RetryLater:
    outcome.delay = float("inf")  # past the constructor's check
    return outcome


BAD: dict[str, Callable[[], Any]] = {
    "retry-inf": lambda: RetryLater(float("inf")),
    "snooze-nan": lambda: Snooze(float("nan")),
    "snooze-huge": lambda: Snooze(1e13),
    "snooze-counted-huge": lambda: Snooze(1e13, count_attempt=True),
    "tampered-snooze": lambda: _tampered(Snooze(1)),
    "tampered-retry": lambda: _tampered(RetryLater(1)),
}


async def test_bad_outcomes_fail_their_own_job_and_the_loop_goes_on(consumer: Consumer) -> None:
    store = consumer.store
    assert isinstance(store, MemoryStore)
    await store.create_queue("q", QueueOptions(retry_limit=0))
    done: list[str] = []

    async def handler(job: Job) -> object:
        kind: str = job.data["kind"]
        if kind in BAD:
            raise BAD[kind]()
        if kind == "surrogate-error":
            raise RuntimeError("no \ud800 here")
        if kind == "surrogate-output":
            return {"text": "out \udfff put"}
        done.append(kind)
        return None

    kinds = [*BAD, "surrogate-error", "surrogate-output"]
    ids = {k: await store.send("q", {"kind": k}) for k in kinds}
    worker = Worker(consumer, "q", handler, concurrency=1)
    await worker.start()

    async def settled() -> bool:
        states = [(await store.get_job(i)).state for i in ids.values()]  # type: ignore[arg-type]
        return all(s in {JobState.FAILED, JobState.COMPLETED} for s in states)

    deadline = time.monotonic() + 10
    while not await settled():
        assert time.monotonic() < deadline, "jobs were not settled"
        assert consumer.task is not None and not consumer.task.done()
        await asyncio.sleep(0.01)
    for kind in BAD:
        info = await store.get_job(ids[kind])  # type: ignore[arg-type]
        assert info.state is JobState.FAILED, kind
        assert info.output["type"] == "InvalidOutcome", kind
        assert "delay" in info.output["message"], kind
    error = await store.get_job(ids["surrogate-error"])  # type: ignore[arg-type]
    assert error.state is JobState.FAILED and error.output["message"] == "no \ufffd here"
    output = await store.get_job(ids["surrogate-output"])  # type: ignore[arg-type]
    assert output.state is JobState.COMPLETED and output.output == {"text": "out \ufffd put"}
    # the loop is alive: a later job still runs
    await store.send("q", {"kind": "after"})
    await until(lambda: done == ["after"])
    assert consumer.task is not None and not consumer.task.done()
