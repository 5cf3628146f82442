"""Many queues in one process: one consumer loop, a small fixed number of connections, and the
client's own sends never starved (issue 7)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import psycopg
from psycopg import conninfo

from insightdesk.shared.queue import Job, JobState, QueueClient
from insightdesk.shared.queue.broker import PgBroker, PgMessage
from insightdesk.shared.queue.statements import CHANNEL_MAX, queue_channel

from .helpers import wait_for_state, wait_until


def _tagged(dsn: str, app: str) -> str:
    params = conninfo.conninfo_to_dict(dsn)
    params["application_name"] = app
    return conninfo.make_conninfo("", **params)


async def _connections(dsn: str, app: str) -> int:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (app,)
        )
        row = await cur.fetchone()
        assert row is not None
        return int(row[0])


async def test_forty_queues_share_one_loop_on_a_pool_of_three(db_dsn: str) -> None:
    app = f"many_{uuid.uuid4().hex[:8]}"
    queues = [f"q{i:02d}" for i in range(40)]
    handled: dict[str, int] = {}
    release = asyncio.Event()

    async def handler(job: Job) -> None:
        await release.wait()
        handled[job.queue] = handled.get(job.queue, 0) + 1

    async with QueueClient.connect(_tagged(db_dsn, app), max_size=3) as client:
        for q in queues:
            await client.create_queue(q)
        workers = await client.work_many(
            dict.fromkeys(queues, handler), concurrency={"q00": 1}, poll_interval=30
        )
        assert len({id(w.consumer) for w in workers}) == 1
        assert [w.concurrency for w in workers[:2]] == [1, 10]
        # every handler blocked, 40 workers running: sends still get a connection at once
        ids = [await asyncio.wait_for(client.send(q, {"q": q}), 5) for q in queues]
        ids += [await asyncio.wait_for(client.send("q00", {"q": "q00"}), 5)]
        first = [i for i in ids[:-1] if i is not None]
        assert len(first) == 40

        async def all_active() -> bool:
            return all([(await client.get_job(i)).state is JobState.ACTIVE for i in first])

        await wait_until(all_active, timeout=10)
        last = ids[-1]
        assert last is not None
        assert (await client.get_job(last)).state is JobState.CREATED  # q00: concurrency 1
        assert await _connections(db_dsn, app) <= 3
        release.set()
        for job_id in ids:
            assert job_id is not None
            await wait_for_state(client, job_id, JobState.COMPLETED)
    assert handled == {q: 2 if q == "q00" else 1 for q in queues}


async def test_broker_subscribers_share_the_client_consumer(db_dsn: str) -> None:
    broker = PgBroker(db_dsn, poll_interval=30, logger=logging.getLogger("tests.broker"))
    seen: list[str] = []
    names = [f"sub-{i}" for i in range(12)]
    for name in names:

        @broker.subscriber(name)
        async def handle(body: dict[str, Any], message: PgMessage) -> None:
            seen.append(message.job.queue)

    try:
        await broker.start()
        workers = [s.worker for s in broker.subscribers]  # type: ignore[attr-defined]
        assert len({id(w.consumer) for w in workers}) == 1
        for name in names:
            await broker.publish({"n": 1}, name)

        async def all_seen() -> bool:
            return sorted(seen) == sorted(names)

        await wait_until(all_seen, timeout=10)
    finally:
        await broker.stop()


async def test_a_send_wakes_only_the_processes_that_serve_its_queue(db_dsn: str) -> None:
    """Each queue has a NOTIFY channel of its own: a loop serving other queues sleeps on."""
    seen: list[str] = []

    async def handler(job: Job) -> None:
        seen.append(job.queue)

    async with (
        QueueClient.connect(db_dsn) as serving,
        QueueClient.connect(db_dsn) as other,
    ):
        for q in ("wake_a", "wake_b", "wake_c"):
            await serving.create_queue(q)
        await serving.work("wake_a", handler, poll_interval=60, supervise=False)
        await other.work_many(
            {"wake_b": handler, "wake_c": handler}, poll_interval=60, supervise=False
        )

        # both loops asleep (nothing queued, the next poll a minute away)
        async def both_asleep() -> bool:
            return serving.consumer.stats.waits >= 1 and other.consumer.stats.waits >= 1

        async def handled(n: int) -> bool:
            return len(seen) == n

        await wait_until(both_asleep)
        await asyncio.sleep(0.2)
        slept, cycles = other.consumer.stats.waits, other.consumer.stats.cycles
        for n in range(10):
            await serving.send("wake_a", {"n": n})
        await wait_until(lambda: handled(10))
        await asyncio.sleep(0.3)  # a stray notification would have arrived by now
        assert other.consumer.stats.waits == slept  # never woke: no cycle, no statement
        assert other.consumer.stats.cycles == cycles
        # and its own queues are still heard at once
        await serving.send("wake_c", {"n": 0})
        await wait_until(lambda: handled(11))
        assert seen[-1] == "wake_c"


async def test_queue_channels_agree_with_the_schema_function(db_dsn: str) -> None:
    long_name = "x" * 100
    async with QueueClient.connect(db_dsn) as client, client.pool.connection() as conn:
        for name in ("tickets", "a.b/c-d", long_name):
            cur = await conn.execute('SELECT "queue".queue_channel(%s)', (name,))
            row = await cur.fetchone()
            assert row is not None
            assert row[0] == queue_channel("queue", name)
            assert len(row[0].encode()) <= CHANNEL_MAX
        assert queue_channel("queue", long_name) != queue_channel("queue", long_name[:-1])
