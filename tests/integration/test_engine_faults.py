"""Faults found under fault injection (issue 12 §4): bad input and bad outcomes are refused or
contained per job, and a queue-policy collision on retry or snooze never blocks the schema."""

from __future__ import annotations

from typing import Any

import pytest

from insightdesk.shared.errors import InvalidArgument
from insightdesk.shared.queue import (
    Job,
    JobOptions,
    JobState,
    NewJob,
    QueueClient,
    QueueOptions,
    RetryLater,
    Snooze,
)
from insightdesk.shared.queue.broker import PgBroker

from .helpers import wait_for_state


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
    calls = [
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
