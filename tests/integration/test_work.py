"""Working jobs: outcomes, retries and backoff, dead letters, leases, expiry, recovery, stop."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from insightdesk.shared.queue import (
    Job,
    JobOptions,
    JobState,
    QueueClient,
    QueueOptions,
    QueuePolicy,
    Reject,
    RetryLater,
    Snooze,
)

from .helpers import wait_for_state, wait_until


async def _claim(
    client: QueueClient, queue: str, limit: int = 1
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """Claim like a worker would, without running anything (a worker that then 'dies')."""
    return [(job.id, job.lease) for job in await client.claim(queue, limit)]


async def test_completed_job_stores_the_handler_output(client: QueueClient) -> None:
    await client.create_queue("q")
    job_id = await client.send("q", {"n": 2})
    assert job_id is not None

    async def double(job: Job) -> dict[str, int]:
        return {"result": job.data["n"] * 2}

    await client.work("q", double)
    await wait_for_state(client, job_id, JobState.COMPLETED)
    info = await client.get_job(job_id)
    assert info.output == {"result": 4}
    assert info.completed_on is not None


async def test_jobs_are_claimed_by_priority_then_age(client: QueueClient) -> None:
    await client.create_queue("prio")
    for n in range(3):
        await client.send("prio", {"n": n})
    await client.send("prio", {"n": "urgent"}, JobOptions(priority=10))
    seen: list[object] = []

    async def record(job: Job) -> None:
        seen.append(job.data["n"])

    await client.work("prio", record, concurrency=1, batch_size=1)

    async def all_seen() -> bool:
        return len(seen) == 4

    await wait_until(all_seen)
    assert seen == ["urgent", 0, 1, 2]


async def test_failures_retry_with_exponential_backoff_then_dead_letter(
    client: QueueClient,
) -> None:
    await client.create_queue("dead")
    await client.create_queue(
        "flaky",
        QueueOptions(retry_limit=2, retry_delay=0.4, retry_backoff=True, dead_letter="dead"),
    )
    job_id = await client.send("flaky", {"n": 1})
    assert job_id is not None
    failed_at: list[float] = []

    async def boom(job: Job) -> None:
        failed_at.append(time.monotonic())
        raise RuntimeError(f"boom {job.attempt}")

    await client.work("flaky", boom, poll_interval=60)
    await wait_for_state(client, job_id, JobState.FAILED, timeout=15)
    info = await client.get_job(job_id)
    assert info.retry_count == 2
    assert info.output["type"] == "RuntimeError" and info.output["message"] == "boom 3"
    # Equal jitter: retry n waits between half and all of delay * 2**(n-1).
    gaps = [b - a for a, b in itertools.pairwise(failed_at)]
    assert len(gaps) == 2
    assert 0.2 <= gaps[0] <= 0.4 + 0.3
    assert 0.4 <= gaps[1] <= 0.8 + 0.3
    [letter] = await client.find_jobs("dead")
    assert letter.data == {"n": 1}
    assert letter.headers is not None
    source = letter.headers["dead_letter"]
    assert source["queue"] == "flaky" and source["id"] == str(job_id)
    assert source["error"]["message"] == "boom 3" and source["attempts"] == 3


async def test_retry_delay_formula_is_capped_and_jittered(client: QueueClient) -> None:
    async with client.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT queue.retry_delay(10, true, NULL, n), n FROM generate_series(0, 4) n, "
            "generate_series(1, 200)"
        )
        rows = await cur.fetchall()
        for delay, n in rows:
            assert 10 * 2**n / 2 <= delay <= 10 * 2**n
        assert len({round(d, 6) for d, _ in rows}) > 100  # jittered, not lockstep
        cur = await conn.execute(
            "SELECT queue.retry_delay(10, true, 25, 10), queue.retry_delay(7, false, NULL, 9)"
        )
        capped, fixed = await cur.fetchone()
        assert capped == 25 and fixed == 7


async def test_reject_dead_letters_at_once_and_retry_later_uses_its_delay(
    client: QueueClient,
) -> None:
    await client.create_queue("dlq")
    await client.create_queue("work", QueueOptions(retry_limit=5, dead_letter="dlq"))
    rejected = await client.send("work", {"kind": "reject"})
    later = await client.send("work", {"kind": "later"})
    assert rejected is not None and later is not None

    async def handler(job: Job) -> None:
        if job.data["kind"] == "reject":
            raise Reject("unknown template")
        if job.attempt == 1:
            raise RetryLater(timedelta(hours=1), "provider busy")

    await client.work("work", handler)
    await wait_for_state(client, rejected, JobState.FAILED)
    assert (await client.get_job(rejected)).retry_count == 0
    assert len(await client.find_jobs("dlq")) == 1
    await wait_for_state(client, later, JobState.RETRY)
    info = await client.get_job(later)
    assert info.retry_count == 1
    assert timedelta(minutes=59) < info.start_after - datetime.now(UTC) <= timedelta(hours=1)


async def test_snooze_postpones_without_using_an_attempt(client: QueueClient) -> None:
    await client.create_queue("snooze", QueueOptions(retry_limit=0))
    job_id = await client.send("snooze", {})
    assert job_id is not None
    runs: list[int] = []

    async def handler(job: Job) -> str:
        runs.append(job.retry_count)
        if len(runs) < 3:
            raise Snooze(0.2)
        return "done"

    await client.work("snooze", handler, poll_interval=60)
    await wait_for_state(client, job_id, JobState.COMPLETED, timeout=10)
    assert runs == [0, 0, 0]


async def test_delayed_job_wakes_the_worker_at_start_after_not_at_the_next_poll(
    client: QueueClient,
) -> None:
    await client.create_queue("delay")
    handled_at: list[float] = []

    async def handler(job: Job) -> None:
        handled_at.append(time.monotonic())

    await client.work("delay", handler, poll_interval=60)
    await asyncio.sleep(0.2)
    sent = time.monotonic()
    await client.send("delay", {}, JobOptions(start_after=1.0))

    async def handled() -> bool:
        return bool(handled_at)

    await wait_until(handled, timeout=10)
    assert 0.9 <= handled_at[0] - sent <= 3.0


async def test_a_stale_lease_cannot_complete_a_reclaimed_job(client: QueueClient) -> None:
    await client.create_queue("lease", QueueOptions(heartbeat=1))
    job_id = await client.send("lease", {})
    [(claimed, stale_lease)] = await _claim(client, "lease")
    assert claimed == job_id
    async with client.pool.connection() as conn:
        await conn.execute(
            "UPDATE queue.job SET heartbeat_on = now() - interval '1 minute' WHERE id = %s",
            (job_id,),
        )
    recovered = await client.supervisor.recover()
    assert recovered == [(job_id, "retry")]
    [(again, fresh_lease)] = await _claim(client, "lease")
    assert again == job_id and fresh_lease != stale_lease
    assert await client.complete(job_id, stale_lease, {"from": "stale"}) is False
    assert await client.complete(job_id, fresh_lease, {"from": "fresh"}) is True
    info = await client.get_job(job_id)
    assert info.state is JobState.COMPLETED and info.output == {"from": "fresh"}


async def test_job_past_expire_in_is_failed_and_retried(client: QueueClient) -> None:
    await client.create_queue("slow", QueueOptions(expire_in=0.3, retry_limit=1))
    job_id = await client.send("slow", {})
    assert job_id is not None
    attempts: list[int] = []

    async def handler(job: Job) -> None:
        attempts.append(job.attempt)
        if job.attempt == 1:
            await asyncio.sleep(5)

    await client.work("slow", handler)
    await wait_for_state(client, job_id, JobState.COMPLETED, timeout=10)
    assert attempts == [1, 2]


async def test_recovery_requeues_jobs_whose_worker_vanished(client: QueueClient) -> None:
    await client.create_queue("crash", QueueOptions(heartbeat=0.5, retry_limit=3))
    ids = await client.send_many("crash", [{"i": i} for i in range(5)])
    assert len(await _claim(client, "crash", limit=5)) == 5  # claimed, then the "worker" died
    await asyncio.sleep(0.7)
    recovered = await client.supervisor.recover()
    assert sorted(r[0] for r in recovered) == sorted(ids)  # type: ignore[type-var]
    for job_id in ids:
        info = await client.get_job(job_id)  # type: ignore[arg-type]
        assert info.state is JobState.RETRY and info.retry_count == 1


async def test_heartbeats_keep_a_long_job_alive(client: QueueClient) -> None:
    await client.create_queue("long", QueueOptions(heartbeat=0.6, retry_limit=0))
    job_id = await client.send("long", {})
    assert job_id is not None

    async def handler(job: Job) -> None:
        await asyncio.sleep(2.0)

    await client.work("long", handler)
    await asyncio.sleep(1.5)
    assert await client.supervisor.recover() == []
    await wait_for_state(client, job_id, JobState.COMPLETED, timeout=10)


async def test_singleton_policy_never_runs_two_jobs_of_one_key_at_once(client: QueueClient) -> None:
    await client.create_queue("one", QueueOptions(policy=QueuePolicy.SINGLETON))
    await client.send_many("one", [{"n": n} for n in range(6)], JobOptions(singleton_key="acct"))
    active = 0
    peak = 0
    done = 0

    async def handler(job: Job) -> None:
        nonlocal active, peak, done
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.05)
        active -= 1
        done += 1

    await client.work("one", handler, concurrency=5)
    await client.work("one", handler, concurrency=5)

    async def all_done() -> bool:
        return done == 6

    await wait_until(all_done, timeout=15)
    assert peak == 1


async def test_graceful_stop_finishes_or_releases_in_flight_jobs(client: QueueClient) -> None:
    await client.create_queue("stop")
    quick = await client.send("stop", {"sleep": 0.2})
    slow = await client.send("stop", {"sleep": 30})
    assert quick is not None and slow is not None
    started = asyncio.Event()
    count = 0

    async def handler(job: Job) -> None:
        nonlocal count
        count += 1
        if count == 2:
            started.set()
        await asyncio.sleep(job.data["sleep"])

    worker = await client.work("stop", handler, concurrency=2)
    await asyncio.wait_for(started.wait(), 5)
    await worker.stop(timeout=1.0)
    quick_info, slow_info = await client.get_job(quick), await client.get_job(slow)
    assert quick_info.state is JobState.COMPLETED
    assert slow_info.state is JobState.CREATED and slow_info.retry_count == 0  # no attempt used


@pytest.mark.parametrize("concurrency", [1, 10])
async def test_worker_drains_a_backlog_exactly_once(client: QueueClient, concurrency: int) -> None:
    await client.create_queue("drain")
    await client.send_many("drain", [{"i": i} for i in range(1000)])
    seen: list[int] = []

    async def handler(job: Job) -> None:
        seen.append(job.data["i"])

    await client.work("drain", handler, concurrency=concurrency)

    async def drained() -> bool:
        [s] = await client.stats("drain")
        return s.completed == 1000

    await wait_until(drained, timeout=30)
    assert sorted(seen) == list(range(1000))


async def test_prefetch_holds_extra_claims_but_never_runs_more_than_concurrency(
    client: QueueClient,
) -> None:
    await client.create_queue("pf", QueueOptions(heartbeat=0.6))
    await client.send_many("pf", [{"i": i} for i in range(12)])
    running = 0
    peak = 0
    release = asyncio.Event()
    done = 0

    async def handler(job: Job) -> None:
        nonlocal running, peak, done
        running += 1
        peak = max(peak, running)
        await release.wait()
        running -= 1
        done += 1

    await client.work("pf", handler, concurrency=2, prefetch=3)

    async def claimed_five() -> bool:
        [s] = await client.stats("pf")
        return s.active == 5

    await wait_until(claimed_five)
    await asyncio.sleep(1.0)  # longer than the heartbeat: buffered claims must be kept alive
    assert await client.supervisor.recover() == []
    [s] = await client.stats("pf")
    assert (s.active, s.created) == (5, 7)
    release.set()

    async def all_done() -> bool:
        return done == 12

    await wait_until(all_done)
    assert peak == 2


# ---------------------------------------------------------------------- batch handlers


async def test_batch_handler_gets_lists_of_at_most_batch_size_and_completes_them(
    client: QueueClient,
) -> None:
    await client.create_queue("bulk")
    ids = await client.send_many("bulk", [{"n": n} for n in range(23)])
    sizes: list[int] = []
    seen: list[int] = []
    in_flight = 0
    most_in_flight = 0

    async def handle(jobs: list[Job]) -> None:
        nonlocal in_flight, most_in_flight
        in_flight += 1
        most_in_flight = max(most_in_flight, in_flight)
        sizes.append(len(jobs))
        seen.extend(job.data["n"] for job in jobs)
        await asyncio.sleep(0.01)
        in_flight -= 1

    await client.work("bulk", handle, batch=True, batch_size=5, concurrency=2)
    for job_id in ids:
        assert job_id is not None
        await wait_for_state(client, job_id, JobState.COMPLETED)
    assert sorted(seen) == list(range(23))
    assert sizes and max(sizes) <= 5
    assert most_in_flight <= 2


async def test_batch_handler_stores_one_output_per_job_or_the_same_for_all(
    client: QueueClient,
) -> None:
    await client.create_queue("per-item")
    await client.create_queue("shared")

    async def per_item(jobs: list[Job]) -> list[dict[str, int]]:
        return [{"double": job.data["n"] * 2} for job in jobs]

    async def shared(jobs: list[Job]) -> dict[str, int]:
        return {"batch": len(jobs)}

    await client.work("per-item", per_item, batch=True, batch_size=10)
    await client.work("shared", shared, batch=True, batch_size=10)
    per_ids = await client.send_many("per-item", [{"n": n} for n in range(6)])
    shared_id = await client.send("shared", {"n": 0})
    for n, job_id in enumerate(per_ids):
        assert job_id is not None
        await wait_for_state(client, job_id, JobState.COMPLETED)
        assert (await client.get_job(job_id)).output == {"double": n * 2}
    assert shared_id is not None
    await wait_for_state(client, shared_id, JobState.COMPLETED)
    assert (await client.get_job(shared_id)).output == {"batch": 1}


async def test_batch_handler_exception_retries_every_job_of_the_batch(
    client: QueueClient,
) -> None:
    await client.create_queue("flaky-bulk", QueueOptions(retry_limit=3, retry_delay=0))
    attempts: list[list[int]] = []

    async def handle(jobs: list[Job]) -> list[int]:
        attempts.append([job.retry_count for job in jobs])
        if any(job.retry_count == 0 for job in jobs):
            raise RuntimeError("boom")
        return [job.retry_count for job in jobs]

    # sent before the worker starts, so the first claim takes all four at once
    ids = await client.send_many("flaky-bulk", [{"n": n} for n in range(4)])
    await client.work("flaky-bulk", handle, batch=True, batch_size=10, concurrency=1)
    for job_id in ids:
        assert job_id is not None
        await wait_for_state(client, job_id, JobState.COMPLETED)
        info = await client.get_job(job_id)
        assert info.retry_count == 1
        assert info.output == 1
    assert attempts[0] == [0, 0, 0, 0]
    assert sum(len(a) for a in attempts) == 8


async def test_batch_handler_outcomes_apply_to_every_job(client: QueueClient) -> None:
    await client.create_queue("reject-bulk", QueueOptions(retry_limit=3))

    async def handle(jobs: list[Job]) -> None:
        raise Reject("not these")

    ids = await client.send_many("reject-bulk", [{"n": n} for n in range(3)])
    await client.work("reject-bulk", handle, batch=True, batch_size=10)
    for job_id in ids:
        assert job_id is not None
        await wait_for_state(client, job_id, JobState.FAILED)
        assert (await client.get_job(job_id)).retry_count == 0


async def test_stopping_a_batch_worker_finishes_the_running_batch_and_hands_back_the_prefetched(
    client: QueueClient,
) -> None:
    await client.create_queue("stop-bulk")
    started = asyncio.Event()
    release = asyncio.Event()

    async def handle(jobs: list[Job]) -> None:
        started.set()
        await release.wait()

    ids = [i for i in await client.send_many("stop-bulk", [{"n": n} for n in range(6)]) if i]
    worker = await client.work(
        "stop-bulk", handle, batch=True, batch_size=2, concurrency=1, prefetch=1
    )
    await asyncio.wait_for(started.wait(), 10)
    stopping = asyncio.create_task(worker.stop(5))
    await asyncio.sleep(0.1)
    release.set()
    await asyncio.wait_for(stopping, 10)
    infos = [await client.get_job(i) for i in ids]
    states = [info.state for info in infos]
    # the running batch finishes; the prefetched one went back unstarted; nothing more claimed
    assert states.count(JobState.COMPLETED) == 2
    assert states.count(JobState.CREATED) == 4
    assert all(info.retry_count == 0 for info in infos)


async def test_stopping_a_batch_worker_releases_unfinished_batches(client: QueueClient) -> None:
    await client.create_queue("stuck-bulk")
    started = asyncio.Event()

    async def handle(jobs: list[Job]) -> None:
        started.set()
        await asyncio.Event().wait()

    ids = [i for i in await client.send_many("stuck-bulk", [{"n": n} for n in range(6)]) if i]
    worker = await client.work(
        "stuck-bulk", handle, batch=True, batch_size=2, concurrency=1, prefetch=1
    )
    await asyncio.wait_for(started.wait(), 10)
    await asyncio.wait_for(worker.stop(0.2), 10)
    assert worker.stats.released == 4
    for job_id in ids:
        info = await client.get_job(job_id)
        assert info.state is JobState.CREATED and info.retry_count == 0


async def test_on_job_done_reports_each_outcome(client: QueueClient) -> None:
    await client.create_queue("hooks", QueueOptions(retry_limit=1))
    kinds = ["ok", "retry", "reject", "snooze"]
    await client.send_many("hooks", [{"kind": k} for k in kinds])
    seen: dict[str, str] = {}

    async def handler(job: Job) -> None:
        kind = job.data["kind"]
        if kind == "retry":
            raise RuntimeError("again")
        if kind == "reject":
            raise Reject("never")
        if kind == "snooze":
            raise Snooze(3600)

    def record(job: Job, outcome: str, seconds: float) -> None:
        assert seconds >= 0
        seen.setdefault(job.data["kind"], outcome)

    await client.work("hooks", handler, on_job_done=record, poll_interval=60)

    async def all_seen() -> bool:
        return len(seen) == 4

    await wait_until(all_seen)
    assert seen == {"ok": "completed", "retry": "retried", "reject": "failed", "snooze": "snoozed"}
