"""Several worker processes on one queue: no job runs twice; a SIGKILLed worker's jobs come back.

Each worker is ``python -m tests.integration.worker_process``; every job execution records a
row in ``executions(job_id, i, pid, at)``, so the database itself tells how often each job ran
and in which process.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Any

import psycopg
import pytest

from insightdesk.shared.queue import JobState, QueueClient, QueueOptions
from tests.integration.outage import BlackHoleProxy, proxied_dsn

ROOT = Path(__file__).resolve().parents[2]


class WorkerProcess:
    """One ``worker_process.py`` child; stderr goes to a file so a chatty child never blocks."""

    def __init__(
        self, proc: asyncio.subprocess.Process, stderr_path: Path, stderr: IO[bytes]
    ) -> None:
        self.proc = proc
        self.stderr_path = stderr_path
        self._stderr = stderr

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stderr_text(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    async def wait_ready(self, timeout: float = 30.0) -> None:
        assert self.proc.stdout is not None
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        except TimeoutError:
            pytest.fail(f"worker {self.pid} not ready within {timeout}s:\n{self.stderr_text()}")
        assert line.strip() == b"READY", (
            f"worker {self.pid} printed {line!r} instead of READY:\n{self.stderr_text()}"
        )

    async def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM (graceful stop) and wait for the exit code."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.proc.wait(), timeout)

    async def kill(self) -> int:
        if self.proc.returncode is None:
            self.proc.kill()
        return await self.proc.wait()

    def close_log(self) -> None:
        self._stderr.close()


class Spawner:
    """Starts worker processes and makes sure none outlives the test."""

    def __init__(self, dsn: str, tmp_path: Path) -> None:
        self.dsn = dsn
        self.tmp_path = tmp_path
        self.children: list[WorkerProcess] = []

    async def start(
        self,
        queue: str,
        *,
        concurrency: int,
        sleep: float,
        heartbeat: float,
        recover_interval: float = 0.5,
        extra: tuple[str, ...] = (),
    ) -> WorkerProcess:
        stderr_path = self.tmp_path / f"worker-{len(self.children)}.stderr"
        stderr = stderr_path.open("wb")
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",  # as a module: a script's folder on sys.path could shadow the stdlib
            "tests.integration.worker_process",
            self.dsn,
            queue,
            str(concurrency),
            str(sleep),
            str(heartbeat),
            "--recover-interval",
            str(recover_interval),
            *extra,
            stdin=asyncio.subprocess.DEVNULL,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        child = WorkerProcess(proc, stderr_path, stderr)
        self.children.append(child)
        return child

    async def close(self) -> None:
        for child in self.children:
            with contextlib.suppress(ProcessLookupError):
                await child.kill()
            child.close_log()


@pytest.fixture
async def spawner(db_dsn: str, tmp_path: Path) -> AsyncIterator[Spawner]:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE executions "
            "(job_id uuid NOT NULL, i int, pid int NOT NULL, at timestamptz NOT NULL)"
        )
    spawner = Spawner(db_dsn, tmp_path)
    try:
        yield spawner
    finally:
        await spawner.close()


async def fetch_all(dsn: str, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cur = await conn.execute(query, params)
        return await cur.fetchall()


async def wait_until_completed(
    client: QueueClient, queue: str, total: int, timeout: float, children: list[WorkerProcess]
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        (stats,) = await client.stats(queue)
        if stats.completed >= total:
            return
        for child in children:
            assert child.proc.returncode is None, (
                f"worker {child.pid} died with {child.proc.returncode}:\n{child.stderr_text()}"
            )
        if time.monotonic() > deadline:
            pytest.fail(f"only {stats.completed}/{total} jobs completed within {timeout}s: {stats}")
        await asyncio.sleep(0.1)


async def test_concurrent_worker_processes_never_run_a_job_twice(
    client: QueueClient, spawner: Spawner, db_dsn: str
) -> None:
    queue = "multi"
    total = 2000
    processes = 4
    await client.create_queue(queue, QueueOptions(retry_limit=0))

    # Every process is up and idle before the first job exists, so all of them race for every batch.
    children = [
        await spawner.start(queue, concurrency=5, sleep=0.002, heartbeat=15.0)
        for _ in range(processes)
    ]
    await asyncio.gather(*(c.wait_ready() for c in children))

    sent: list[uuid.UUID] = []
    for start in range(0, total, 250):
        ids = await client.send_many(queue, [{"i": i} for i in range(start, start + 250)])
        sent.extend(i for i in ids if i is not None)
    assert len(sent) == total

    await wait_until_completed(client, queue, total, timeout=60.0, children=children)
    codes = await asyncio.gather(*(c.terminate() for c in children))
    assert codes == [0] * processes, [c.stderr_text() for c in children]

    rows = await fetch_all(db_dsn, "SELECT job_id, count(*) FROM executions GROUP BY job_id")
    runs = {row[0]: row[1] for row in rows}
    twice = {job_id: n for job_id, n in runs.items() if n != 1}
    assert not twice, f"{len(twice)} job(s) ran more than once: {list(twice.items())[:10]}"
    assert set(runs) == set(sent)
    ((total_rows, distinct_i),) = await fetch_all(
        db_dsn, "SELECT count(*), count(DISTINCT i) FROM executions"
    )
    assert total_rows == total
    assert distinct_i == total

    # The processes really competed: each of them ran a share of the jobs.
    per_pid: dict[int, int] = dict(
        await fetch_all(db_dsn, "SELECT pid, count(*) FROM executions GROUP BY pid")
    )
    assert set(per_pid) == {c.pid for c in children}, per_pid

    (stats,) = await client.stats(queue)
    assert (stats.completed, stats.created, stats.retry, stats.active, stats.failed) == (
        total,
        0,
        0,
        0,
        0,
    )
    states = await fetch_all(db_dsn, "SELECT state::text, count(*) FROM queue.job GROUP BY state")
    assert states == [("completed", total)]


async def test_sigkilled_worker_jobs_are_recovered_and_completed(
    client: QueueClient, spawner: Spawner, db_dsn: str
) -> None:
    queue = "crashy"
    total = 20
    concurrency = 5
    await client.create_queue(queue, QueueOptions(retry_limit=2))
    ids = await client.send_many(queue, [{"i": i} for i in range(total)])
    sent = [i for i in ids if i is not None]
    assert len(sent) == total

    # A claims a batch and sits in its handlers; kill it while they run.
    a = await spawner.start(queue, concurrency=concurrency, sleep=30.0, heartbeat=1.0)
    await a.wait_ready()
    deadline = time.monotonic() + 20.0
    while True:
        ((started,),) = await fetch_all(
            db_dsn, f"SELECT count(*) FROM executions WHERE pid = {a.pid}"
        )
        if started == concurrency:
            break
        assert time.monotonic() < deadline, f"A started only {started} job(s):\n{a.stderr_text()}"
        await asyncio.sleep(0.05)
    assert await a.kill() == -signal.SIGKILL

    in_flight: set[uuid.UUID] = {
        row[0]
        for row in await fetch_all(db_dsn, "SELECT job_id FROM executions WHERE pid = %s", (a.pid,))
    }
    assert len(in_flight) == concurrency
    for job_id in in_flight:
        info = await client.get_job(job_id)
        assert info.state is JobState.ACTIVE, info
        assert info.retry_count == 0

    # B takes over; its own supervisor notices A's stopped heartbeats.
    b = await spawner.start(
        queue, concurrency=concurrency, sleep=0.01, heartbeat=1.0, recover_interval=0.5
    )
    await b.wait_ready()
    await wait_until_completed(client, queue, total, timeout=30.0, children=[b])
    assert await b.terminate() == 0, b.stderr_text()

    for job_id in sent:
        info = await client.get_job(job_id)
        assert info.state is JobState.COMPLETED, info
        expected_retries = 1 if job_id in in_flight else 0
        assert info.retry_count == expected_retries, info
    (stats,) = await client.stats(queue)
    assert (stats.completed, stats.active, stats.created, stats.retry, stats.failed) == (
        total,
        0,
        0,
        0,
        0,
    )

    # A ran the in-flight jobs once; B ran every job exactly once (the recovered ones again).
    runs = await fetch_all(
        db_dsn,
        "SELECT job_id, count(*) FILTER (WHERE pid = %s), count(*) FILTER (WHERE pid = %s) "
        "FROM executions GROUP BY job_id",
        (a.pid, b.pid),
    )
    assert len(runs) == total
    for job_id, by_a, by_b in runs:
        assert by_b == 1, (job_id, by_a, by_b)
        assert by_a == (1 if job_id in in_flight else 0), (job_id, by_a, by_b)


async def test_a_handler_raising_system_exit_uses_its_attempts_and_is_dead_lettered(
    client: QueueClient, spawner: Spawner, db_dsn: str
) -> None:
    queue, dead = "poison", "poison-dead"
    await client.create_queue(dead)
    await client.create_queue(queue, QueueOptions(retry_limit=2, retry_delay=0, dead_letter=dead))
    job_id = await client.send(queue, {"i": 1})
    assert job_id is not None
    worker = await spawner.start(
        queue, concurrency=1, sleep=0.0, heartbeat=15.0, extra=("--exit-in-handler",)
    )
    await worker.wait_ready()
    deadline = time.monotonic() + 30.0
    while (info := await client.get_job(job_id)).state is not JobState.FAILED:
        assert worker.proc.returncode is None, (
            f"the worker exited with {worker.proc.returncode}: {info}\n{worker.stderr_text()}"
        )
        assert time.monotonic() < deadline, f"not failed within 30s: {info}"
        await asyncio.sleep(0.05)
    assert info.retry_count == 2 and isinstance(info.output, dict)
    assert info.output["type"] == "SystemExit"
    ((runs,),) = await fetch_all(db_dsn, "SELECT count(*) FROM executions")
    assert runs == 3  # retry_limit + 1 attempts, then the dead-letter queue
    assert len(await client.find_jobs(dead)) == 1
    assert worker.proc.returncode is None  # the worker survived its poison job
    assert await worker.terminate() == 0, worker.stderr_text()


async def test_sigterm_during_a_database_outage_ends_the_worker_within_a_bound(
    client: QueueClient, spawner: Spawner, db_dsn: str
) -> None:
    queue = "outage"
    await client.create_queue(queue)
    await client.send_many(queue, [{"i": i} for i in range(3)])
    proxy = BlackHoleProxy(db_dsn)
    port = await proxy.start()
    try:
        spawner.dsn = proxied_dsn(db_dsn, port)
        shutdown_timeout, flush_wait, stop_wait = 1.0, 2.0, 1.0
        worker = await spawner.start(
            queue,
            concurrency=1,
            sleep=3600.0,
            heartbeat=0.6,
            extra=(
                "--shutdown-timeout",
                str(shutdown_timeout),
                "--records-dsn",
                db_dsn,
                "--stop-waits",
                f"{flush_wait},{stop_wait}",
            ),
        )
        await worker.wait_ready()
        deadline = time.monotonic() + 20.0
        while not await fetch_all(db_dsn, "SELECT 1 FROM executions"):
            assert time.monotonic() < deadline, worker.stderr_text()
            await asyncio.sleep(0.05)
        proxy.black_hole()
        await asyncio.sleep(1.0)  # heartbeats and the claim loop now wait on a silent server
        began = time.monotonic()
        code = await worker.terminate(timeout=60)
        elapsed = time.monotonic() - began
        # close() + the pools' own close (psycopg_pool: 5 s each at most) + interpreter exit
        bound = shutdown_timeout + flush_wait + 4 * stop_wait + 2 * 5 + 3
        assert code == 0, worker.stderr_text()
        assert elapsed < bound, f"stopped after {elapsed:.1f}s (bound {bound}s)"
    finally:
        await proxy.stop()
