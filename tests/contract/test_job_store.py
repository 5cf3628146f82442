"""The store contract: what the engine's loops rely on, held by PgStore and MemoryStore alike."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest

from insightdesk.shared.errors import InvalidArgument, JobNotFound, QueueNotFound
from insightdesk.shared.queue import JobOptions, JobState, QueueOptions, QueuePolicy
from insightdesk.shared.queue.ports import (
    ClaimRequest,
    Completion,
    Failure,
    JobStore,
    Postponed,
)

from .conftest import Backend


async def test_a_sent_job_is_claimed_with_its_fields_by_name(backend: Backend) -> None:
    store: JobStore = backend.store
    await store.create_queue("mail")
    job_id = await store.send("mail", {"to": "a@b"}, JobOptions(headers={"trace": "t1"}))
    [job] = await store.claim("mail", 5)
    assert job.id == job_id and job.queue == "mail" and job.data == {"to": "a@b"}
    assert job.headers == {"trace": "t1"} and job.attempt == 1 and job.retry_limit == 2
    assert job.heartbeat == 15.0  # the default given to the claim
    assert (await store.get_job(job.id)).state is JobState.ACTIVE


async def test_claims_take_priority_then_age_and_never_the_same_job_twice(
    backend: Backend,
) -> None:
    store: JobStore = backend.store
    await store.create_queue("q")
    low = await store.send("q", 1)
    high = await store.send("q", 2, JobOptions(priority=5))
    later = await store.send("q", 3)
    first = await store.claim("q", 2)
    assert [j.id for j in first] == [high, low]
    assert [j.id for j in await store.claim("q", 2)] == [later]
    assert await store.claim("q", 2) == []


async def test_sending_to_a_missing_queue_fails_and_a_known_id_is_not_sent_twice(
    backend: Backend,
) -> None:
    store: JobStore = backend.store
    with pytest.raises(QueueNotFound):
        await store.send("nowhere", {})
    await store.create_queue("q")
    fixed = uuid.uuid4()
    assert await store.send("q", {}, JobOptions(id=fixed)) == fixed
    assert await store.send("q", {}, JobOptions(id=fixed)) is None
    with pytest.raises(JobNotFound):
        await store.get_job(uuid.uuid4())
    with pytest.raises(InvalidArgument):
        await store.send("q", {"bad": object()})
    assert len(await store.claim("q", 10)) == 1  # the bad send wrote nothing


async def test_queue_definitions_are_typed_and_checked(backend: Backend) -> None:
    store: JobStore = backend.store
    with pytest.raises(QueueNotFound):
        await store.create_queue("q", QueueOptions(dead_letter="missing"))
    await store.create_queue("dead")
    await store.create_queue("q", QueueOptions(retry_limit=4, dead_letter="dead"))
    definition = await store.get_queue("q")
    assert definition.name == "q" and definition.options.retry_limit == 4
    assert definition.options.dead_letter == "dead" and not definition.keyed
    with pytest.raises(QueueNotFound):
        await store.get_queue("other")


async def test_delayed_jobs_wait_and_the_session_says_when_they_are_due(
    backend: Backend,
) -> None:
    store: JobStore = backend.store
    await store.create_queue("later")
    await store.create_queue("now")
    await store.create_queue("empty")
    await store.send("later", {}, JobOptions(start_after=timedelta(hours=1)))
    await store.send("now", {})
    async with store.session(listen=False) as session:
        claimed = await session.claim(
            [], [ClaimRequest("later", 5), ClaimRequest("now", 5)], default_heartbeat=15.0
        )
        assert [j.queue for j in claimed.jobs] == ["now"]
        due = await session.next_due(["later", "now", "empty"])
    assert set(due) == {"later"}
    assert 3500 < due["later"] <= 3600


async def test_a_claim_without_promotion_takes_ready_jobs_and_leaves_due_ones_waiting(
    backend: Backend,
) -> None:
    store: JobStore = backend.store
    await store.create_queue("q")
    delayed = await store.send("q", {"n": 1}, JobOptions(start_after=timedelta(hours=1)))
    assert delayed is not None
    ready = await store.send("q", {"n": 2})
    await backend.make_due(delayed)
    async with store.session(listen=False) as session:
        plain = await session.claim(
            [], [ClaimRequest("q", 5, promote=False)], default_heartbeat=15.0
        )
        assert [j.id for j in plain.jobs] == [ready]
        assert (await store.get_job(delayed)).state is JobState.CREATED
        again = await session.claim(
            [], [ClaimRequest("q", 5, promote=False)], default_heartbeat=15.0
        )
        assert again.jobs == []
        assert await session.next_due(["q"]) == {"q": 0.0}  # the consumer's cue to promote
        promoting = await session.claim([], [ClaimRequest("q", 5)], default_heartbeat=15.0)
        assert [j.id for j in promoting.jobs] == [delayed]


async def test_a_keyed_claim_promotes_due_jobs_whatever_it_is_asked(backend: Backend) -> None:
    store: JobStore = backend.store
    await store.create_queue("k", QueueOptions(policy=QueuePolicy.SINGLETON))
    delayed = await store.send(
        "k", {}, JobOptions(start_after=timedelta(hours=1), singleton_key="a")
    )
    assert delayed is not None
    await backend.make_due(delayed)
    async with store.session(listen=False) as session:
        claimed = await session.claim(
            [], [ClaimRequest("k", 5, keyed=True, promote=False)], default_heartbeat=15.0
        )
    assert [j.id for j in claimed.jobs] == [delayed]


async def test_one_session_claim_completes_and_claims_across_queues_with_own_limits(
    backend: Backend,
) -> None:
    store: JobStore = backend.store
    for name in ("a", "b", "c"):
        await store.create_queue(name)
        for n in range(4):
            await store.send(name, {"n": n})
    [first] = await store.claim("a", 1)
    async with store.session(listen=False) as session:
        claimed = await session.claim(
            [Completion(first.id, first.lease, '{"ok": true}')],
            [ClaimRequest("a", 2), ClaimRequest("b", 1), ClaimRequest("c", 3)],
            default_heartbeat=15.0,
        )
    counts = {q: sum(j.queue == q for j in claimed.jobs) for q in ("a", "b", "c")}
    assert counts == {"a": 2, "b": 1, "c": 3}
    done = await store.get_job(first.id)
    assert done.state is JobState.COMPLETED and done.output == {"ok": True}


async def test_completion_needs_the_current_lease(backend: Backend) -> None:
    store: JobStore = backend.store
    await store.create_queue("q")
    await store.send("q", {})
    [job] = await store.claim("q")
    assert await store.complete(job.id, uuid.uuid4(), "x") is False
    assert await store.complete(job.id, job.lease, {"n": 1}) is True
    assert await store.complete(job.id, job.lease, {"n": 2}) is False
    assert (await store.get_job(job.id)).output == {"n": 1}


async def test_failures_retry_until_the_last_attempt_then_go_to_the_dead_letter_queue(
    backend: Backend,
) -> None:
    store: JobStore = backend.store
    await store.create_queue("dead")
    await store.create_queue("q", QueueOptions(retry_limit=1, dead_letter="dead"))
    job_id = await store.send("q", {"n": 1})
    [job] = await store.claim("q")
    assert await store.fail_jobs([Failure(job, {"message": "boom"}, delay=0.0)]) == 1
    info = await store.get_job(job_id)  # type: ignore[arg-type]
    assert info.state is JobState.RETRY and info.retry_count == 1
    [again] = await store.claim("q")
    assert again.id == job_id and again.attempt == 2
    assert await store.fail_jobs([Failure(job, {"message": "stale"})]) == 0  # old lease
    assert await store.fail_jobs([Failure(again, {"message": "boom 2"})]) == 1
    failed = await store.get_job(again.id)
    assert failed.state is JobState.FAILED and failed.output == {"message": "boom 2"}
    [letter] = await store.claim("dead")
    assert letter.data == {"n": 1}
    assert letter.headers["dead_letter"]["id"] == str(job_id)
    assert letter.headers["dead_letter"]["attempts"] == 2


async def test_a_final_failure_skips_the_remaining_attempts(backend: Backend) -> None:
    store: JobStore = backend.store
    await store.create_queue("q", QueueOptions(retry_limit=5))
    await store.send("q", {})
    [job] = await store.claim("q")
    await store.fail_jobs([Failure(job, {"message": "never"}, final=True)])
    assert (await store.get_job(job.id)).state is JobState.FAILED


async def test_a_retry_delay_keeps_the_job_from_claims_until_due(backend: Backend) -> None:
    store: JobStore = backend.store
    await store.create_queue("q")
    await store.send("q", {})
    [job] = await store.claim("q")
    await store.fail_jobs([Failure(job, {"message": "later"}, delay=3600.0)])
    assert await store.claim("q") == []
    async with store.session(listen=False) as session:
        due = await session.next_due(["q"])
    assert 3500 < due["q"] <= 3600


async def test_postponing_returns_a_job_without_using_an_attempt(backend: Backend) -> None:
    store: JobStore = backend.store
    await store.create_queue("q")
    await store.send("q", {})
    [job] = await store.claim("q")
    assert await store.postpone([Postponed(job, 0.0)]) == 1
    assert await store.postpone([Postponed(job, 0.0)]) == 0
    [again] = await store.claim("q")
    assert again.id == job.id and again.attempt == 1 and again.lease != job.lease
    assert await store.complete(job.id, job.lease) is False


async def test_heartbeats_touch_only_jobs_whose_lease_holds(backend: Backend) -> None:
    store: JobStore = backend.store
    await store.create_queue("q")
    for _ in range(3):
        await store.send("q", {})
    jobs = await store.claim("q", 3)
    await store.complete(jobs[0].id, jobs[0].lease)
    assert await store.heartbeat(jobs) == 2
    assert await store.heartbeat([]) == 0


async def test_recovery_requeues_silent_jobs_and_spares_beating_ones(backend: Backend) -> None:
    store: JobStore = backend.store
    await store.create_queue("q", QueueOptions(heartbeat=10))
    await store.send("q", {})
    [job] = await store.claim("q")
    assert await store.recover(default_heartbeat=15.0, limit=100) == []
    await backend.age_active(job.id, 60)
    assert await store.recover(default_heartbeat=15.0, limit=100) == [(job.id, "retry")]
    info = await store.get_job(job.id)
    assert info.retry_count == 1 and info.output["type"] == "HeartbeatLost"
    assert await store.complete(job.id, job.lease) is False


async def test_keyed_queues_claim_one_active_job_per_key(backend: Backend) -> None:
    store: JobStore = backend.store
    await store.create_queue("k", QueueOptions(policy=QueuePolicy.SINGLETON))
    assert (await store.get_queue("k")).keyed
    for _ in range(2):
        await store.send("k", {}, JobOptions(singleton_key="ticket-1"))
    await store.send("k", {}, JobOptions(singleton_key="ticket-2"))
    first = await store.claim("k", 5)
    assert sorted(j.singleton_key or "" for j in first) == ["ticket-1", "ticket-2"]
    assert await store.claim("k", 5) == []
    await store.complete(first[0].id, first[0].lease)
    assert len(await store.claim("k", 5)) == (1 if first[0].singleton_key == "ticket-1" else 0)


async def test_a_listening_session_hears_only_the_queues_it_listens_to(backend: Backend) -> None:
    store: JobStore = backend.store
    for q in ("heard", "other", "dropped"):
        await store.create_queue(q)
    async with store.session(listen=True) as session:
        await session.listen_to({"heard", "dropped"})
        await session.listen_to({"heard"})  # stops hearing "dropped"
        await store.send("other", {})
        await store.send("dropped", {})
        await store.send("heard", {})
        notified: set[str] = set()
        wake = asyncio.Event()
        while "heard" not in notified:
            notified |= await asyncio.wait_for(session.wait(wake, 5.0), 10)
            wake.clear()
        # the notifications of one commit arrive together: anything else would be here by now
        notified |= await session.wait(wake, 0.2)
    assert notified == {"heard"}


# Queue-policy collisions on the way back to the queue (issue 12 §4). A stately queue holds at
# most one job per key in each of created and retry, a short queue one created job per key.
# A failed job whose retry, or a snoozed/released job whose return, would be a second such
# job yields to the one already waiting: it is failed for good (into its dead-letter queue)
# with a PolicyConflict error, and nothing else of the statement is held up.


async def _stately_with_one_waiting_retry(store: JobStore) -> tuple[uuid.UUID, Any]:
    """A stately queue whose key "k" has job A waiting to retry and job B active."""
    await store.create_queue("dead")
    await store.create_queue(
        "s", QueueOptions(policy=QueuePolicy.STATELY, retry_limit=3, dead_letter="dead")
    )
    a = await store.send("s", {"n": "a"}, JobOptions(singleton_key="k"))
    assert a is not None
    [job_a] = await store.claim("s")
    assert await store.fail_jobs([Failure(job_a, {"message": "a failed"}, delay=3600.0)]) == 1
    b = await store.send("s", {"n": "b"}, JobOptions(singleton_key="k"))
    assert b is not None
    [job_b] = await store.claim("s")
    assert job_b.id == b
    return a, job_b


async def _assert_yielded(store: JobStore, job_id: uuid.UUID, waiting: uuid.UUID) -> None:
    info = await store.get_job(job_id)
    assert info.state is JobState.FAILED
    assert info.output["type"] == "PolicyConflict"
    assert "yields to it" in info.output["message"] and str(waiting) in info.output["message"]
    assert [j.data for j in await store.claim("dead", 10)] == [info.data]


async def test_a_stately_retry_whose_key_already_waits_to_retry_yields_to_that_job(
    backend: Backend,
) -> None:
    store: JobStore = backend.store
    a, job_b = await _stately_with_one_waiting_retry(store)
    await store.create_queue("other")
    await store.send("other", {})
    [other] = await store.claim("other")
    async with store.session(listen=False) as session:  # the consumer's settle path
        await session.settle(
            [Failure(job_b, {"message": "b failed"}), Failure(other, {"message": "x"})], []
        )
    await _assert_yielded(store, job_b.id, a)
    info = await store.get_job(job_b.id)
    assert info.retry_count == 0 and info.output["error"] == {"message": "b failed"}
    assert (await store.get_job(a)).state is JobState.RETRY
    assert (await store.get_job(other.id)).state is JobState.RETRY  # settled in the same call


async def test_a_stately_snooze_whose_key_already_waits_yields_to_that_job(
    backend: Backend,
) -> None:
    store: JobStore = backend.store
    await store.create_queue("dead")
    await store.create_queue("s", QueueOptions(policy=QueuePolicy.STATELY, dead_letter="dead"))
    await store.send("s", {"n": "a"}, JobOptions(singleton_key="k"))
    [job_a] = await store.claim("s")
    b = await store.send("s", {"n": "b"}, JobOptions(singleton_key="k"))
    assert b is not None
    assert await store.send("s", {"n": "c"}, JobOptions(singleton_key="k")) is None
    assert await store.postpone([Postponed(job_a, 60.0)]) == 1
    await _assert_yielded(store, job_a.id, b)
    assert (await store.get_job(b)).state is JobState.CREATED


async def test_a_short_snooze_whose_key_is_queued_yields_and_a_short_retry_does_not_collide(
    backend: Backend,
) -> None:
    store: JobStore = backend.store
    await store.create_queue("dead")
    await store.create_queue(
        "short", QueueOptions(policy=QueuePolicy.SHORT, retry_limit=3, dead_letter="dead")
    )
    await store.send("short", {"n": "a"}, JobOptions(singleton_key="k"))
    [job_a] = await store.claim("short")
    b = await store.send("short", {"n": "b"}, JobOptions(singleton_key="k"))
    assert b is not None
    assert await store.send("short", {"n": "c"}, JobOptions(singleton_key="k")) is None
    async with store.session(listen=False) as session:
        await session.settle([], [Postponed(job_a, 0.0)])
    await _assert_yielded(store, job_a.id, b)
    # a retry is not "queued" for the short policy: it waits beside the queued job
    [job_b] = await store.claim("short")
    c = await store.send("short", {"n": "c"}, JobOptions(singleton_key="k"))
    assert await store.fail_jobs([Failure(job_b, {"message": "b failed"}, delay=60.0)]) == 1
    assert (await store.get_job(job_b.id)).state is JobState.RETRY
    assert (await store.get_job(c)).state is JobState.CREATED  # type: ignore[arg-type]


async def test_recovery_goes_on_past_a_job_whose_retry_collides(backend: Backend) -> None:
    store: JobStore = backend.store
    a, job_b = await _stately_with_one_waiting_retry(store)
    await store.create_queue("other")
    await store.send("other", {})
    [other] = await store.claim("other")
    await backend.age_active(job_b.id, 120)
    await backend.age_active(other.id, 120)
    recovered = dict(await store.recover(default_heartbeat=15.0, limit=100))
    assert recovered == {job_b.id: "failed", other.id: "retry"}
    await _assert_yielded(store, job_b.id, a)
    assert (await store.get_job(job_b.id)).output["error"]["type"] == "HeartbeatLost"
    assert (await store.get_job(other.id)).output["type"] == "HeartbeatLost"
