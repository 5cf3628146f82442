"""Manual operations, maintenance, statistics and migrations."""

from __future__ import annotations

import asyncio
import uuid

import psycopg
import pytest
from psycopg import sql

from insightdesk.shared.errors import JobConflict, JobNotFound, QueueNotFound
from insightdesk.shared.queue import (
    Job,
    JobOptions,
    JobState,
    QueueClient,
    QueueOptions,
    QueuePolicy,
    Reject,
)
from insightdesk.shared.queue.migrator import LATEST_VERSION, migrate

from .helpers import wait_for_state


async def test_cancel_resume_retry_delete_and_find(client: QueueClient) -> None:
    await client.create_queue("ops")
    a = await client.send("ops", {"n": 1}, JobOptions(singleton_key="k1"))
    b = await client.send("ops", {"n": 2})
    assert a is not None
    assert b is not None
    assert await client.cancel(a) == [a]
    assert await client.cancel(a) == []  # already cancelled: nothing to do
    assert (await client.get_job(a)).state is JobState.CANCELLED
    assert await client.resume(a) == [a]
    assert (await client.get_job(a)).state is JobState.CREATED
    assert [j.id for j in await client.find_jobs("ops", singleton_key="k1")] == [a]
    assert [j.id for j in await client.find_jobs("ops", state=JobState.CREATED)] == [a, b]
    assert await client.delete(b) == [b]
    with pytest.raises(JobNotFound):
        await client.get_job(b)
    await client.cancel(a)
    assert await client.retry(a) == [a]
    assert (await client.get_job(a)).state is JobState.RETRY


async def test_failed_job_can_be_retried_by_hand(client: QueueClient) -> None:
    await client.create_queue("manual", QueueOptions(retry_limit=0))
    job_id = await client.send("manual", {})
    assert job_id is not None
    runs = 0

    async def handler(job: Job) -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            raise RuntimeError("first run fails")

    await client.work("manual", handler, poll_interval=0.2)
    await wait_for_state(client, job_id, JobState.FAILED)
    assert await client.retry(job_id) == [job_id]
    await wait_for_state(client, job_id, JobState.COMPLETED)
    assert runs == 2


async def test_redrive_moves_dead_letters_back_to_their_source_queue(client: QueueClient) -> None:
    await client.create_queue("dlq")
    await client.create_queue("src", QueueOptions(dead_letter="dlq"))
    job_id = await client.send("src", {"order": 9})
    assert job_id is not None
    fixed = False

    async def handler(job: Job) -> str:
        if not fixed:
            raise Reject("bug in handler")
        return "ok"

    worker = await client.work("src", handler)
    await wait_for_state(client, job_id, JobState.FAILED)
    assert len(await client.find_jobs("dlq", state=JobState.CREATED)) == 1
    fixed = True
    assert await client.redrive("dlq") == 1
    assert await client.redrive("dlq") == 0  # nothing left
    [letter] = await client.find_jobs("dlq")
    assert letter.state is JobState.COMPLETED
    [_, again] = await client.find_jobs("src")
    await wait_for_state(client, again.id, JobState.COMPLETED)
    assert (await client.get_job(again.id)).data == {"order": 9}
    await worker.stop()


async def test_maintenance_purges_finished_and_expires_stale_queued_jobs(
    client: QueueClient,
) -> None:
    await client.create_queue("old", QueueOptions(delete_after=0))
    done = await client.send("old", {"done": True})
    stale = await client.send("old", {"stale": True}, JobOptions(retention=0.2))
    fresh = await client.send("old", {"fresh": True})
    assert done is not None
    assert stale is not None
    assert fresh is not None
    await client.cancel(done)  # finished (cancelled) with delete_after = 0
    await asyncio.sleep(0.3)
    result = await client.supervisor.maintain()
    assert result.ran
    assert (result.purged, result.expired) == (1, 1)
    with pytest.raises(JobNotFound):
        await client.get_job(done)
    expired = await client.get_job(stale)
    assert expired.state is JobState.FAILED
    assert expired.output["type"] == "RetentionExpired"
    assert (await client.get_job(fresh)).state is JobState.CREATED


async def test_only_one_process_runs_maintenance_at_a_time(
    client: QueueClient, db_dsn: str
) -> None:
    key = "insightdesk.queue.maintain:queue"
    async with await psycopg.AsyncConnection.connect(db_dsn, autocommit=True) as other:
        await other.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (key,))
        assert (await client.supervisor.maintain()).ran is False
        await other.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (key,))
    assert (await client.supervisor.maintain()).ran is True


async def test_stats_count_states_and_the_scaler_query_counts_ready_jobs(
    client: QueueClient, db_dsn: str
) -> None:
    await client.create_queue("s1")
    await client.create_queue("s2")
    await client.send_many("s1", [{}] * 3)
    await client.send("s1", {}, JobOptions(start_after=3600))
    cancelled = await client.send("s2", {})
    assert cancelled is not None
    await client.cancel(cancelled)
    await asyncio.sleep(0.05)
    s1, s2 = await client.stats()
    assert (s1.name, s1.created, s1.ready) == ("s1", 4, 3)
    assert s1.oldest_ready_age > 0
    assert (s2.name, s2.cancelled, s2.ready) == ("s2", 1, 0)
    assert await client.ready_count("s1") == 3
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        cur = await conn.execute(client.scaler_query("s1").encode())
        assert await cur.fetchone() == (3,)


async def test_unknown_dead_letter_queue_and_self_dead_letter_are_refused(
    client: QueueClient,
) -> None:
    with pytest.raises(QueueNotFound):
        await client.create_queue("a", QueueOptions(dead_letter="missing"))
    with pytest.raises(ValueError, match="own dead-letter"):
        await client.create_queue("b", QueueOptions(dead_letter="b"))


async def test_delete_queue_removes_its_jobs(client: QueueClient) -> None:
    await client.create_queue("gone")
    job_id = await client.send("gone", {})
    assert job_id is not None
    assert await client.delete_queue("gone") is True
    with pytest.raises(JobNotFound):
        await client.get_job(job_id)
    with pytest.raises(QueueNotFound):
        await client.send("gone", {})


async def test_concurrent_migrations_apply_each_version_once(pg_server_dsn: str) -> None:
    name = f"insightdesk_mig_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        params = psycopg.conninfo.conninfo_to_dict(pg_server_dsn)
        params["dbname"] = name
        dsn = psycopg.conninfo.make_conninfo("", **params)

        async def one() -> int:
            async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
                return await migrate(conn, "jobs_q")

        assert await asyncio.gather(*(one() for _ in range(6))) == [LATEST_VERSION] * 6
        async with await psycopg.AsyncConnection.connect(dsn) as conn:
            cur = await conn.execute("SELECT version FROM jobs_q.version ORDER BY version")
            assert [r[0] for r in await cur.fetchall()] == list(range(1, LATEST_VERSION + 1))
        async with QueueClient.connect(dsn, schema="jobs_q") as other:
            await other.create_queue("x")
            assert await other.send("x", {}) is not None
    finally:
        with psycopg.connect(pg_server_dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


async def test_ensure_queue_creates_once_and_never_overwrites(client: QueueClient) -> None:
    await client.ensure_queue("owned")
    assert (await client.get_queue("owned"))["retry_limit"] == 2
    await client.create_queue("owned", QueueOptions(retry_limit=9))
    await client.ensure_queue("owned")
    assert (await client.get_queue("owned"))["retry_limit"] == 9


async def test_an_operation_a_queue_policy_forbids_is_a_job_conflict_and_changes_nothing(
    client: QueueClient,
) -> None:
    await client.create_queue("short-ops", QueueOptions(policy=QueuePolicy.SHORT))
    first = await client.send("short-ops", {"n": 1}, JobOptions(singleton_key="k"))
    assert first is not None
    assert await client.cancel(first) == [first]
    second = await client.send("short-ops", {"n": 2}, JobOptions(singleton_key="k"))
    assert second is not None  # the key's slot was free again
    with pytest.raises(JobConflict, match="policy already holds a job for that key"):
        await client.resume(first)  # would queue a second created job for "k"
    assert (await client.get_job(first)).state is JobState.CANCELLED
    assert (await client.get_job(second)).state is JobState.CREATED
