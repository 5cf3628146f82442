"""Faults found under fault injection (issue 12 §4): bad input and bad outcomes are refused or
contained per job, and a queue-policy collision on retry or snooze never blocks the schema."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
import pytest

from insightdesk.shared.errors import InvalidArgument
from insightdesk.shared.migrations import migrate_schema
from insightdesk.shared.queue import (
    Job,
    JobOptions,
    JobState,
    NewJob,
    QueueClient,
    QueueOptions,
    QueuePolicy,
    RetryLater,
    Snooze,
)
from insightdesk.shared.queue.broker import PgBroker
from insightdesk.shared.queue.migrator import LATEST_VERSION, migrations

from .helpers import scratch_database, wait_for_state, wait_until


async def _job_count(client: QueueClient) -> int:
    async with client.pool.connection() as conn:
        cur = await conn.execute("SELECT count(*) FROM queue.job")
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def test_a_send_with_an_out_of_range_duration_is_refused_and_inserts_nothing(
    client: QueueClient,
) -> None:
    await client.create_queue("q")
    for name in ("retry_delay", "expire_in", "heartbeat", "delete_after", "start_after"):
        with pytest.raises(InvalidArgument, match=name.removesuffix("_after")):
            await client.send("q", {}, JobOptions(**{name: 1e13}))  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="retention"):
        await client.create_queue("q", QueueOptions(retention=1e13))
    assert await _job_count(client) == 0
    assert (await client.get_queue("q")).options.retention == QueueOptions().retention
    # crash recovery still runs over the schema
    assert await client.store.recover(default_heartbeat=15.0, limit=100) == []


async def test_a_lone_surrogate_is_refused_at_every_send_and_inserts_nothing(
    client: QueueClient, db_dsn: str
) -> None:
    await client.create_queue("q")
    await client.subscribe("evt", "q")
    bad: dict[str, Any] = {"a": "\ud800"}
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: client.send("q", bad),
        lambda: client.send("q", {}, JobOptions(headers=bad)),
        lambda: client.send_many("q", [{"ok": 1}, bad]),
        lambda: client.send_many("q", [NewJob({}, JobOptions(headers=bad))]),
        lambda: client.send_many("q", [{}], JobOptions(headers=bad)),
        lambda: client.publish("evt", bad),
        lambda: client.publish("evt", {}, JobOptions(headers=bad)),
    ]
    for call in calls:
        with pytest.raises(InvalidArgument, match="surrogate"):
            await call()
    broker = PgBroker(db_dsn, logger=None)
    await broker.connect()
    try:
        with pytest.raises(InvalidArgument, match="surrogate"):
            await broker.publish(bad, "q")
        with pytest.raises(InvalidArgument, match="surrogate"):
            await broker.publish({}, "q", headers={"h": "x\udfff"})
    finally:
        await broker.stop()
    assert await _job_count(client) == 0


def _tampered(outcome: Snooze | RetryLater) -> Snooze | RetryLater:
    outcome.delay = 1e13  # past the constructor's check: "interval out of range" in PostgreSQL
    return outcome


async def test_bad_outcomes_fail_their_job_and_a_real_worker_goes_on(client: QueueClient) -> None:
    await client.create_queue("q", QueueOptions(retry_limit=0))
    bad: dict[str, Any] = {
        "retry-inf": lambda: RetryLater(float("inf")),
        "snooze-nan": lambda: Snooze(float("nan")),
        "snooze-huge": lambda: Snooze(1e13),
        "tampered-snooze": lambda: _tampered(Snooze(1)),
        "tampered-retry": lambda: _tampered(RetryLater(1)),
    }

    async def handler(job: Job) -> object:
        kind: str = job.data["kind"]
        if kind in bad:
            raise bad[kind]()
        if kind == "surrogate-error":
            raise RuntimeError("no \ud800 here")
        if kind == "surrogate-output":
            return {"text": "out \udfff put"}
        return {"ok": kind}

    ids = {k: await client.send("q", {"kind": k}) for k in [*bad, "surrogate-error"]}
    ids["surrogate-output"] = await client.send("q", {"kind": "surrogate-output"})
    await client.work("q", handler, concurrency=1, poll_interval=0.2)
    for kind in bad:
        job_id = ids[kind]
        assert job_id is not None
        await wait_for_state(client, job_id, JobState.FAILED)
        info = await client.get_job(job_id)
        assert info.output["type"] == "InvalidOutcome" and "delay" in info.output["message"]
    error_id, output_id = ids["surrogate-error"], ids["surrogate-output"]
    assert error_id is not None and output_id is not None
    await wait_for_state(client, error_id, JobState.FAILED)
    assert (await client.get_job(error_id)).output["message"] == "no \ufffd here"
    await wait_for_state(client, output_id, JobState.COMPLETED)
    assert (await client.get_job(output_id)).output == {"text": "out \ufffd put"}
    later = await client.send("q", {"kind": "later"})
    assert later is not None
    await wait_for_state(client, later, JobState.COMPLETED)
    assert client.consumer.task is not None and not client.consumer.task.done()


@pytest.mark.parametrize("policy", [QueuePolicy.STATELY, QueuePolicy.SHORT])
async def test_a_worker_settles_policy_collisions_without_spinning_and_closes_promptly(
    client: QueueClient, policy: QueuePolicy
) -> None:
    """Retry (stately) and snooze (stately and short) into a key's taken slot: the job yields
    (failed, PolicyConflict), the job waiting for the key runs, the loop never errors."""
    await client.create_queue("dead")
    await client.create_queue("p", QueueOptions(policy=policy, retry_limit=3, dead_letter="dead"))
    completed: list[str] = []

    async def handler(job: Job) -> object:
        name: str = job.data["n"]
        if name == "retrying" and policy is QueuePolicy.STATELY:
            raise RuntimeError("fails while its key waits to retry")
        if name == "snoozing":
            # a job for the same key arrives while this one runs, then this one snoozes; it
            # becomes claimable only a second later, so the worker's free slot cannot take it
            # (and free the key) before the snooze is settled
            await client.send("p", {"n": "queued"}, JobOptions(singleton_key="s", start_after=1.0))
            raise Snooze(60)
        completed.append(name)
        return None

    waiting = retrying = None
    if policy is QueuePolicy.STATELY:
        waiting = await client.send("p", {"n": "waiting"}, JobOptions(singleton_key="r"))
        [first] = await client.claim("p")
        await client.fail(first, {"message": "first attempt"}, delay=1.0)
        retrying = await client.send("p", {"n": "retrying"}, JobOptions(singleton_key="r"))
    snoozing = await client.send("p", {"n": "snoozing"}, JobOptions(singleton_key="s"))
    await client.work("p", handler, concurrency=2, poll_interval=0.2)
    assert snoozing is not None
    await wait_for_state(client, snoozing, JobState.FAILED)
    assert (await client.get_job(snoozing)).output["type"] == "PolicyConflict"
    if policy is QueuePolicy.STATELY:
        assert retrying is not None and waiting is not None
        await wait_for_state(client, retrying, JobState.FAILED)
        info = await client.get_job(retrying)
        assert info.output["type"] == "PolicyConflict" and str(waiting) in info.output["message"]
        await wait_for_state(client, waiting, JobState.COMPLETED)
    await wait_until(lambda: _completed(completed, "queued"))
    assert client.consumer.stats.errors == 0
    await asyncio.wait_for(client.close(), 10)
    assert client.consumer.task is None or client.consumer.task.done()


async def _completed(names: list[str], name: str) -> bool:
    return name in names


async def test_a_populated_version_4_database_upgrades_and_recovery_gets_past_a_collision(
    pg_server_dsn: str,
) -> None:
    """A v4 schema whose stately key "k" has a job waiting to retry and a silent active job:
    after the upgrade to v5, crash recovery fails the colliding job with a PolicyConflict and
    re-queues the other queue's dead job in the same pass (before, the pass failed)."""
    with scratch_database(pg_server_dsn, "insightdesk_up5") as dsn:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            assert await migrate_schema(conn, "queue", migrations("queue")[:4]) == 4
            await conn.execute(
                "INSERT INTO queue.queue (name, policy) VALUES ('s', 'stately'), ('o', 'standard')"
            )
            await conn.execute(
                """
                INSERT INTO queue.job (name, policy, singleton_key, state, retry_count, data,
                                       start_after, waiting, started_on, heartbeat_on, lease)
                VALUES ('s', 'stately', 'k', 'retry', 1, '"waiting"', now() + interval '1 h',
                        true, NULL, NULL, NULL),
                       ('s', 'stately', 'k', 'active', 0, '"silent"', now(), false,
                        now() - interval '1 h', now() - interval '1 h', gen_random_uuid()),
                       ('o', 'standard', NULL, 'active', 0, '"dead worker"', now(), false,
                        now() - interval '1 h', now() - interval '1 h', gen_random_uuid())
                """
            )
        async with QueueClient.connect(dsn) as client:  # migrates to the latest version
            assert await client.migrate() == LATEST_VERSION
            recovered = await client.store.recover(default_heartbeat=15.0, limit=100)
            states = {(await client.get_job(i)).data: s for i, s in recovered}
            assert states == {"silent": "failed", "dead worker": "retry"}
            [silent] = await client.find_jobs("s", state=JobState.FAILED)
            assert silent.output is not None and silent.output["type"] == "PolicyConflict"
