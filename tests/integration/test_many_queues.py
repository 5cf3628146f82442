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
