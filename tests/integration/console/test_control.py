"""Engine additions for the operations console, against the real database: pause/resume,
the worker registry, statistics history, every attempt's error, search and bulk actions."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from insightdesk.shared.errors import InvalidArgument, JobNotFound, QueueNotFound
from insightdesk.shared.queue import Job, JobOptions, JobState, QueueClient, QueueOptions
from insightdesk.shared.queue.control import QueueControl
from insightdesk.shared.queue.search import JobFilter
from tests.integration.helpers import wait_for_state, wait_until


async def test_a_paused_queue_claims_nothing_but_accepts_jobs_and_resumes(
    client: QueueClient,
) -> None:
    control = QueueControl(client)
    await client.create_queue("q")
    await control.pause("q")
    job_id = await client.send("q", {"n": 1})
    assert job_id is not None
    assert await client.claim("q", 5) == []
    assert (await control.queues("q"))[0].paused is True
    await control.resume("q")
    claimed = await client.claim("q", 5)
    assert [j.id for j in claimed] == [job_id]


async def test_pause_stops_a_running_worker_in_another_client_and_resume_wakes_it(
    client: QueueClient, db_dsn: str
) -> None:
    await client.create_queue("q")
    seen: list[int] = []

    async def handle(job: Job) -> None:
        seen.append(job.data["n"])

    async with QueueClient.connect(db_dsn, migrate_schema=False) as other:
        await other.work("q", handle, poll_interval=30)
        control = QueueControl(client)
        await client.send("q", {"n": 1})
        await wait_until(lambda: _true(seen == [1]))
        await control.pause("q")
        await client.send("q", {"n": 2})
        await asyncio.sleep(0.3)
        assert seen == [1]
        await control.resume("q")  # the NOTIFY wakes the idle worker (poll is 30 s)
        await wait_until(lambda: _true(seen == [1, 2]), timeout=5)


async def _true(value: bool) -> bool:
    return value


async def test_pause_of_an_unknown_queue_is_not_found(client: QueueClient) -> None:
    with pytest.raises(QueueNotFound):
        await QueueControl(client).pause("nope")


async def test_workers_register_and_deregister(client: QueueClient, db_dsn: str) -> None:
    await client.create_queue("q")
    control = QueueControl(client)

    async def handle(job: Job) -> None:
        return None

    async with QueueClient.connect(db_dsn, migrate_schema=False) as other:
        await other.work("q", handle, concurrency=3)
        workers = await control.workers()
        assert [(w.queue, w.concurrency) for w in workers] == [("q", 3)]
        assert (await control.queues("q"))[0].workers == 1
    assert await control.workers() == []


async def test_dead_worker_rows_expire(client: QueueClient) -> None:
    await client.create_queue("q")
    control = QueueControl(client, worker_ttl=30)
    async with client.pool.connection() as conn:
        await conn.execute(
            "INSERT INTO queue.worker (id, host, pid, queue, concurrency, heartbeat_on) "
            "VALUES (%s, 'h', 1, 'q', 1, now() - interval '1 hour')",
            (uuid.uuid4(),),
        )
    assert await control.workers() == []
    await client.store.execute("expire_workers", {"ttl": 30})
    async with client.pool.connection() as conn:
        cur = await conn.execute("SELECT count(*) FROM queue.worker")
        row = await cur.fetchone()
    assert row is not None and row[0] == 0


async def test_history_snapshot_counts_the_queue_once_per_slot(client: QueueClient) -> None:
    control = QueueControl(client)
    await client.create_queue("q")
    await client.send_many("q", [{"n": n} for n in range(3)])
    await client.send("q", {"n": "later"}, JobOptions(start_after=3600))
    [job] = await client.claim("q", 1)
    assert await client.complete(job.id, job.lease)
    await control.snapshot(every=3600)
    await control.snapshot(every=3600)  # same slot: nothing more
    points = await control.history(7200, "q")
    assert len(points) == 1
    point = points[0]
    assert (point.ready, point.delayed, point.active) == (2, 1, 0)
    await control.prune_history(retention=0.000001)
    assert await control.history(7200, "q") == []


async def test_every_failed_attempt_keeps_its_error(client: QueueClient) -> None:
    control = QueueControl(client)
    await client.create_queue("q", QueueOptions(retry_limit=1))
    job_id = await client.send("q", {"n": 1})
    assert job_id is not None
    for message in ("first", "second"):
        [job] = await client.claim("q", 1)
        await client.fail(job, RuntimeError(message), delay=0)
    detail = await control.job(job_id)
    assert detail.state == "failed"
    assert [e["attempt"] for e in detail.errors] == [1, 2]
    assert [e["error"]["message"] for e in detail.errors] == ["first", "second"]
    assert "RuntimeError: second" in detail.errors[1]["error"]["traceback"]


async def test_job_detail_of_an_unknown_id_is_not_found(client: QueueClient) -> None:
    with pytest.raises(JobNotFound):
        await QueueControl(client).job(uuid.uuid4())


async def test_search_filters_and_keyset_pages(client: QueueClient) -> None:
    control = QueueControl(client)
    await client.create_queue("a")
    await client.create_queue("b")
    ids = await client.send_many("a", [{"n": n, "even": n % 2 == 0} for n in range(7)])
    await client.send("b", {"n": 100}, JobOptions(singleton_key="k1"))
    everything = JobFilter.build(queues=["a"])
    first = await control.search(everything, limit=3)
    assert [j.id for j in first.jobs] == list(reversed(ids))[:3]
    assert first.next_cursor is not None
    second = await control.search(everything, cursor=first.next_cursor, limit=3)
    third = await control.search(everything, cursor=second.next_cursor, limit=3)
    assert [j.id for j in first.jobs + second.jobs + third.jobs] == list(reversed(ids))
    assert third.next_cursor is None
    even = await control.search(JobFilter.build(data='{"even": true}'))
    assert sorted(json.loads(j.data_preview or "")["n"] for j in even.jobs) == [0, 2, 4, 6]
    keyed = await control.search(JobFilter.build(singleton_key="k1"))
    assert [j.name for j in keyed.jobs] == ["b"]
    by_id = await control.search(JobFilter.build(id=str(ids[2]), states=["created"]))
    assert [j.id for j in by_id.jobs] == [ids[2]]
    none = await control.search(JobFilter.build(id=str(ids[2]), states=["failed"]))
    assert none.jobs == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"states": ["bogus"]}, "state"),
        ({"id": "not-a-uuid"}, "id"),
        ({"data": "{oops"}, "data"),
        ({"data": "[1]"}, "data"),
        ({"queues": ["bad name!"]}, "name"),
    ],
)
def test_bad_filters_are_refused_with_the_field_named(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message):
        JobFilter.build(**kwargs)  # type: ignore[arg-type]


async def test_bulk_retry_and_delete_by_filter_in_batches(client: QueueClient) -> None:
    control = QueueControl(client)
    await client.create_queue("q", QueueOptions(retry_limit=0))
    ids = await client.send_many("q", [{"n": n} for n in range(7)])
    claimed = await client.claim("q", 7)
    for job in claimed[:5]:
        await client.fail(job, RuntimeError("boom"))
    progress: list[tuple[int, int]] = []
    result = await control.bulk(
        "retry",
        JobFilter.build(queues=["q"], states=["failed"]),
        batch=2,
        progress=lambda m, a: progress.append((m, a)),
    )
    assert (result.matched, result.affected) == (5, 5)
    assert progress[-1] == (5, 5) and len(progress) == 3
    for job_id in ids[:5]:
        assert job_id is not None
        assert (await client.get_job(job_id)).state == JobState.RETRY
    deleted = await control.bulk("delete", JobFilter.build(queues=["q"]), batch=3)
    assert deleted.affected == 7


async def test_redrive_selected_dead_letters(client: QueueClient) -> None:
    control = QueueControl(client)
    await client.create_queue("dlq")
    await client.create_queue("q", QueueOptions(retry_limit=0, dead_letter="dlq"))
    await client.send_many("q", [{"n": n} for n in range(3)])
    for job in await client.claim("q", 3):
        await client.fail(job, RuntimeError("boom"))
    dead = await control.search(JobFilter.build(queues=["dlq"], states=["created"]))
    assert len(dead.jobs) == 3
    moved = await control.act("redrive", [dead.jobs[0].id])
    assert moved == [dead.jobs[0].id]
    queued = await control.search(JobFilter.build(queues=["q"], states=["created"]))
    assert len(queued.jobs) == 1
    result = await control.bulk("redrive", JobFilter.build(queues=["dlq"], states=["created"]))
    assert (result.matched, result.affected) == (2, 2)
    await wait_for_state(client, dead.jobs[1].id, JobState.COMPLETED)


async def test_a_paused_worker_with_ready_jobs_sleeps_instead_of_spinning(
    client: QueueClient,
) -> None:
    await client.create_queue("q")
    control = QueueControl(client)
    await control.pause("q")
    await client.send_many("q", [{} for _ in range(4)])
    await client.send("q", {}, JobOptions(start_after=0.05))  # waiting, then due while paused

    async def handle(job: Job) -> None:
        return None

    worker = await client.work("q", handle, poll_interval=30)
    await asyncio.sleep(0.5)
    # A busy loop would claim (nothing) hundreds of times in half a second.
    assert worker.stats.claimed == 0
    assert client.consumer.stats.cycles + client.consumer.stats.lookups <= 6
    await control.resume("q")
    await wait_until(lambda: _true(worker.stats.claimed == 5), timeout=5)
