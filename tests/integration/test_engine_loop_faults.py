"""Engine faults under a real PostgreSQL: the cron and claim loops come back after their
backends are terminated, prefetched jobs go back to the queue when stop begins, and stopping a
client is bounded while the database does not answer (a TCP proxy that black-holes the
traffic stands in for the outage; the shared server is never stopped)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import psycopg
import pytest

import insightdesk.shared.queue.client as client_module
import insightdesk.shared.queue.consumer as consumer_module
import insightdesk.shared.queue.tasks as tasks_module
import insightdesk.shared.queue.worker as worker_module
from insightdesk.shared.queue import CronScheduler, Job, JobState, QueueClient
from insightdesk.shared.queue.client import make_pool
from tests.integration.outage import BlackHoleProxy, proxied_dsn


async def until(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        await asyncio.sleep(0.05)


async def _terminate_other_backends(dsn: str) -> int:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as admin:
        cur = await admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        row = await cur.fetchone()
        assert row is not None
        return int(row[0])


async def test_cron_and_claim_loops_come_back_after_their_backends_are_terminated(
    client: QueueClient, db_dsn: str
) -> None:
    await client.create_queue("ticks")
    await client.create_queue("work")
    cron = CronScheduler(client, tick_interval=0.05)
    await cron.schedule("every-second", "ticks", "* * * * * *")
    done: list[object] = []

    async def handler(job: Job) -> None:
        done.append(job.data)

    async def ticks() -> int:
        (stats,) = await client.stats("ticks")
        return stats.created

    cron.start()
    try:
        await client.work("work", handler, poll_interval=0.2)
        await until(lambda: _at_least(ticks, 1), what="a first cron slot")
        assert await _terminate_other_backends(db_dsn) >= 1
        before = await ticks()
        await until(lambda: _at_least(ticks, before + 2), what="cron slots after the kill")
        await client.send("work", {"after": "kill"})

        async def worked() -> bool:
            return done == [{"after": "kill"}]

        await until(worked, what="a job claimed after the kill")
        # and once more, while the loops are busy
        await _terminate_other_backends(db_dsn)
        before = await ticks()
        await client.send("work", {"after": "second kill"})

        async def worked_again() -> bool:
            return len(done) == 2

        await until(worked_again, what="a job claimed after the second kill")
        await until(lambda: _at_least(ticks, before + 1), what="cron after the second kill")
        assert client.loops.dead == {}
    finally:
        await cron.stop()


async def _at_least(count: Callable[[], Any], n: int) -> bool:
    return bool(await count() >= n)


async def test_prefetched_jobs_go_back_when_stop_begins_and_never_start(
    client: QueueClient, db_dsn: str
) -> None:
    await client.create_queue("slow")
    started: list[uuid.UUID] = []
    release = asyncio.Event()

    async def handler(job: Job) -> None:
        started.append(job.id)
        await release.wait()

    ids = [i for i in await client.send_many("slow", [{"n": n} for n in range(6)]) if i]
    worker = await client.work("slow", handler, concurrency=1, prefetch=5, poll_interval=0.1)

    async def all_held() -> bool:
        return len(worker.claimed) == 6 and len(started) == 1

    await until(all_held, what="one running and five prefetched")
    stopping = asyncio.create_task(worker.stop(30))

    async def handed_back() -> bool:
        states = [(await client.get_job(i)).state for i in ids if i not in started]
        return states == [JobState.CREATED] * 5

    await until(handed_back, what="the prefetched jobs back in the queue")
    assert not stopping.done()  # the running job still runs: they did not wait for it
    release.set()
    await asyncio.wait_for(stopping, 20)
    assert len(started) == 1
    for i in ids:
        info = await client.get_job(i)
        if i in started:
            assert info.state is JobState.COMPLETED
        else:
            assert (info.state, info.retry_count, info.started_on) == (JobState.CREATED, 0, None)


@pytest.fixture
async def proxy(db_dsn: str) -> AsyncIterator[tuple[BlackHoleProxy, str]]:
    proxy = BlackHoleProxy(db_dsn)
    port = await proxy.start()
    try:
        yield proxy, proxied_dsn(db_dsn, port)
    finally:
        await proxy.stop()


async def test_closing_a_client_is_bounded_while_the_database_does_not_answer(
    client: QueueClient, proxy: tuple[BlackHoleProxy, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    flush_wait, stop_wait = 2.0, 1.0
    monkeypatch.setattr(consumer_module, "FLUSH_WAIT", flush_wait)
    for module in (tasks_module, worker_module, client_module):
        monkeypatch.setattr(module, "STOP_WAIT", stop_wait)
    hole, dsn = proxy
    await client.create_queue("outage")
    for n in range(3):
        await client.send("outage", {"n": n})
    pool = make_pool(dsn, max_size=3)
    await pool.open(wait=True, timeout=10)
    outage = QueueClient(pool, dsn=dsn)
    started = asyncio.Event()

    async def handler(job: Job) -> None:
        started.set()
        await asyncio.sleep(3600)

    try:
        await outage.work(
            "outage", handler, concurrency=1, prefetch=1, default_heartbeat=0.6, poll_interval=0.2
        )
        await asyncio.wait_for(started.wait(), 20)
        await asyncio.sleep(0.5)  # a heartbeat or two went through
        hole.black_hole()
        await asyncio.sleep(0.5)  # heartbeats and the claim loop now wait on a silent server
        shutdown_timeout = 0.5
        began = time.monotonic()
        await asyncio.wait_for(outage.close(shutdown_timeout), 60)
        elapsed = time.monotonic() - began
        bound = shutdown_timeout + flush_wait + 4 * stop_wait + 3
        assert elapsed < bound, f"close took {elapsed:.1f}s, bound {bound}s"
    finally:
        await asyncio.wait_for(pool.close(timeout=1), 30)
