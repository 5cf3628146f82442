"""Claiming and settling jobs by hand: QueueClient.claim / complete / fail / snooze."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from insightdesk.shared.errors import InvalidArgument
from insightdesk.shared.queue import JobOptions, JobState, QueueClient, QueueOptions, QueuePolicy


async def test_claim_takes_ready_jobs_by_priority_then_age(client: QueueClient) -> None:
    await client.create_queue("q")
    low = await client.send("q", {"n": 1})
    high = await client.send("q", {"n": 2}, JobOptions(priority=5))
    later = await client.send("q", {"n": 3}, JobOptions(start_after=60))
    last = await client.send("q", {"n": 4})
    assert later is not None and high is not None

    first = await client.claim("q")
    assert [j.id for j in first] == [high]
    job = first[0]
    assert job.queue == "q" and job.data == {"n": 2} and job.retry_count == 0
    assert job.heartbeat == 15.0  # the default heartbeat, stored on the claimed job
    assert (await client.get_job(high)).state == JobState.ACTIVE

    rest = await client.claim("q", limit=10)
    assert [j.id for j in rest] == [low, last]  # the delayed job is not ready
    assert await client.claim("q") == []
    assert (await client.get_job(later)).state == JobState.CREATED


async def test_concurrent_claims_skip_locked_rows(client: QueueClient) -> None:
    await client.create_queue("q")
    ids = await client.send_many("q", range(20))
    batches = await asyncio.gather(*(client.claim("q", limit=3) for _ in range(8)))
    claimed = [j.id for batch in batches for j in batch]
    assert len(claimed) == len(set(claimed)) == 20
    assert set(claimed) == set(ids)


async def test_claim_on_a_singleton_queue_takes_one_job_per_key(client: QueueClient) -> None:
    await client.create_queue("one", QueueOptions(policy=QueuePolicy.SINGLETON))
    a = await client.send("one", 1, JobOptions(singleton_key="a"))
    b = await client.send("one", 2, JobOptions(singleton_key="b"))
    claimed = await client.claim("one", limit=10)
    assert {j.id for j in claimed} == {a, b}
    assert await client.claim("one", limit=10) == []


async def test_complete_settles_a_claimed_job_once(client: QueueClient) -> None:
    await client.create_queue("q")
    job_id = await client.send("q", {"n": 1})
    (job,) = await client.claim("q")
    assert await client.complete(job.id, job.lease, {"ok": True})
    assert not await client.complete(job.id, job.lease, {"ok": False})
    info = await client.get_job(job_id)  # type: ignore[arg-type]
    assert info.state == JobState.COMPLETED and info.output == {"ok": True}


async def test_fail_retries_then_dead_letters(client: QueueClient) -> None:
    await client.create_queue("dead")
    await client.create_queue("q", QueueOptions(retry_limit=1, dead_letter="dead"))
    job_id = await client.send("q", {"n": 1})
    assert job_id is not None

    (job,) = await client.claim("q")
    assert await client.fail(job, ValueError("boom"), delay=0)
    info = await client.get_job(job_id)
    assert info.state == JobState.RETRY and info.retry_count == 1
    assert info.output["type"] == "ValueError" and info.output["message"] == "boom"

    (again,) = await client.claim("q")
    assert again.id == job_id and again.retry_count == 1 and again.lease != job.lease
    assert await client.fail(again, {"type": "Custom", "message": "still broken"})
    info = await client.get_job(job_id)
    assert info.state == JobState.FAILED and info.output["message"] == "still broken"
    (letter,) = await client.find_jobs("dead")
    assert letter.data == {"n": 1}
    assert letter.headers is not None and letter.headers["dead_letter"]["id"] == str(job_id)


async def test_fail_final_dead_letters_at_once_and_delay_is_kept(client: QueueClient) -> None:
    await client.create_queue("dead")
    await client.create_queue("q", QueueOptions(retry_limit=5, dead_letter="dead"))
    first = await client.send("q", 1)
    second = await client.send("q", 2)
    assert first is not None and second is not None

    jobs = {j.id: j for j in await client.claim("q", limit=2)}
    assert await client.fail(jobs[first], RuntimeError("no"), final=True)
    assert (await client.get_job(first)).state == JobState.FAILED
    assert len(await client.find_jobs("dead")) == 1

    before = datetime.now(UTC)
    assert await client.fail(jobs[second], RuntimeError("later"), delay=30)
    info = await client.get_job(second)
    assert info.state == JobState.RETRY and info.retry_count == 1
    assert 25 < (info.start_after - before).total_seconds() < 35


async def test_snooze_requeues_without_using_an_attempt(client: QueueClient) -> None:
    await client.create_queue("q")
    job_id = await client.send("q", 1)
    assert job_id is not None
    (job,) = await client.claim("q")
    before = datetime.now(UTC)
    assert await client.snooze(job, 30)
    info = await client.get_job(job_id)
    assert info.state == JobState.CREATED and info.retry_count == 0
    assert 25 < (info.start_after - before).total_seconds() < 35
    assert await client.claim("q") == []

    with pytest.raises(InvalidArgument):
        await client.snooze(job, -1)


async def test_a_stale_lease_can_neither_fail_nor_complete(client: QueueClient) -> None:
    await client.create_queue("q")
    job_id = await client.send("q", 1)
    assert job_id is not None
    (stale,) = await client.claim("q")
    assert await client.snooze(stale, 0)  # e.g. crash recovery re-queued it
    (fresh,) = await client.claim("q")
    assert fresh.id == stale.id and fresh.lease != stale.lease

    assert not await client.fail(stale, ValueError("late"))
    assert not await client.snooze(stale, 0)
    assert not await client.complete(stale.id, stale.lease, "late")
    assert (await client.get_job(job_id)).state == JobState.ACTIVE

    assert await client.complete(fresh.id, fresh.lease, "done")
    assert (await client.get_job(job_id)).output == "done"


async def test_the_claim_session_plans_once_and_hands_its_connection_back_as_it_was(
    client: QueueClient,
) -> None:
    """The consumer's connection plans its claim statements generically (array parameters make
    PostgreSQL otherwise re-plan them on every call); the setting must not leak into the pool."""
    store = client.store

    async def plan_mode(conn: psycopg.AsyncConnection[Any]) -> str:
        cur = await conn.execute("SHOW plan_cache_mode")
        row = await cur.fetchone()
        assert row is not None
        return str(row[0])

    async with store.session(listen=True) as session:
        assert await plan_mode(session._conn) == "force_generic_plan"
        used = session._conn
    async with client.pool.connection() as conn:
        if conn is used:
            assert await plan_mode(conn) == "auto"
    # whichever connection the pool hands out, none keeps the session's setting
    conns = [await client.pool.getconn() for _ in range(client.pool.max_size)]
    try:
        assert any(c is used for c in conns)
        assert {await plan_mode(c) for c in conns} == {"auto"}
    finally:
        for c in conns:
            await client.pool.putconn(c)


async def test_a_snooze_after_a_failed_attempt_records_no_attempt_error(
    client: QueueClient, db_dsn: str
) -> None:
    """Every failed attempt appends its error; a snooze is not an attempt, also when the job
    already failed once (it then goes back to 'retry', the state a failure leads to)."""
    await client.create_queue("s", QueueOptions(retry_limit=3, retry_delay=0))
    job_id = await client.send("s", {})
    [job] = await client.claim("s")
    await client.fail(job, RuntimeError("first attempt"), delay=0)
    [job] = await client.claim("s")
    assert job.id == job_id and job.retry_count == 1
    assert await client.snooze(job, 0)
    assert (await client.get_job(job_id)).state is JobState.RETRY
    [job] = await client.claim("s")
    await client.fail(job, RuntimeError("second attempt"), delay=0)
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        cur = await conn.execute("SELECT errors FROM queue.job WHERE id = %s", (job_id,))
        row = await cur.fetchone()
    assert row is not None
    assert [e["error"]["message"] for e in row[0]] == ["first attempt", "second attempt"]
    assert [e["attempt"] for e in row[0]] == [1, 2]
