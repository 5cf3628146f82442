"""A worker keeps going through a PostgreSQL restart (``pg_ctl stop -m fast`` then ``start``).

The test runs a private server from the ``pgserver`` package's binaries so it can stop and start
it without disturbing the suite's shared server. ``initdb`` and ``postgres`` refuse to run as root;
as pgserver itself does, the server then runs as the unprivileged ``pgserver`` system user
(created with ``useradd`` if missing) and its directory is handed to that user.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from insightdesk.shared.errors import QueueError
from insightdesk.shared.queue import Job, JobState, QueueClient, QueueOptions


def _pgserver_bin() -> Path:
    """``Path(pgserver.__file__).parent / "pginstall" / "bin"``, without importing pgserver
    (its import creates runtime directories and warns when XDG_RUNTIME_DIR is unset)."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or spec.origin is None:
        raise RuntimeError("the pgserver package (a dev dependency) is not installed")
    return Path(spec.origin).parent / "pginstall" / "bin"


PG_BIN = _pgserver_bin()
SYSTEM_USER = "pgserver"  # the unprivileged user pgserver runs its servers as when root


def _ensure_system_user(name: str) -> None:
    """Like ``pgserver.utils.ensure_user_exists``: create the user when it does not exist."""
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "-s", "/bin/bash", name], check=True, capture_output=True)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PrivatePostgres:
    """A throw-away cluster in ``base``: data in ``base/data``, socket and logs in ``base``."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.data = base / "data"
        self.log = base / "server.log"
        self.port = _free_port()
        self.dsn = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self.user: str | None = None
        if os.geteuid() == 0:
            _ensure_system_user(SYSTEM_USER)
            self.user = SYSTEM_USER
            shutil.chown(base, SYSTEM_USER, SYSTEM_USER)

    def _run(self, *args: str) -> None:
        output = self.base / "command.out"
        with output.open("w") as out:
            result = subprocess.run(
                [str(PG_BIN / args[0]), *args[1:]],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                user=self.user,
                group=self.user,
                extra_groups=[] if self.user else None,
                timeout=60,
                check=False,
            )
        if result.returncode != 0:
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            raise RuntimeError(
                f"{' '.join(args)} exited {result.returncode}:\n{output.read_text()}\n{log}"
            )

    def initdb(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    base = Path(tempfile.mkdtemp(prefix="insightdesk-pgrestart-"))
    server = PrivatePostgres(base)
    try:
        server.initdb()
        server.start()
        yield server
    finally:
        if server.running():
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                server.stop("immediate")
        shutil.rmtree(base, ignore_errors=True)


async def _eventually(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> float:
    """Poll ``check`` until true; database errors (server restarting) count as "not yet"."""
    start = time.monotonic()
    deadline = start + timeout
    last_error: Exception | None = None
    while True:
        try:
            if await check():
                return time.monotonic() - start
        except QueueError as exc:
            last_error = exc
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not reached within {timeout}s (last error: {last_error})")
        await asyncio.sleep(0.05)


@pytest.mark.slow
async def test_worker_drains_through_a_postgres_restart(private_pg: PrivatePostgres) -> None:
    queue = "restart"
    total = 300
    concurrency = 5
    runs: defaultdict[uuid.UUID, list[float]] = defaultdict(list)

    async def handler(job: Job) -> None:
        runs[job.id].append(time.monotonic())
        await asyncio.sleep(0.005)

    async with QueueClient.connect(private_pg.dsn, migrate_schema=True) as client:
        await client.create_queue(queue, QueueOptions(retry_limit=3))
        sent = [
            i
            for i in await client.send_many(queue, [{"i": i} for i in range(total)])
            if i is not None
        ]
        assert len(sent) == total

        client.supervisor.recover_interval = 0.5
        # A long poll interval: after the restart, only reconnect logic and NOTIFY wake the worker.
        await client.work(
            queue, handler, concurrency=concurrency, poll_interval=30.0, default_heartbeat=5.0
        )

        async def some_handled() -> bool:
            return len(runs) >= 30

        await _eventually(some_handled, 10.0, "30 jobs handled before the restart")
        await asyncio.to_thread(private_pg.stop, "fast")
        handled_while_down = len(runs)
        assert handled_while_down < total, "the queue drained before the server went down"
        await asyncio.sleep(1.0)
        assert len(runs) == handled_while_down, "jobs were handled while the server was down"
        await asyncio.to_thread(private_pg.start)
        up_at = time.monotonic()

        async def all_completed() -> bool:
            (stats,) = await client.stats(queue)
            return stats.completed == total

        await _eventually(all_completed, 45.0, f"all {total} jobs completed after the restart")

        # At-least-once: every job ran; a job ran twice only if its first run predates the restart.
        assert set(runs) == set(sent)
        again = {job_id: times for job_id, times in runs.items() if len(times) > 1}
        assert all(times[0] < up_at for times in again.values()), again
        assert len(again) <= 2 * concurrency, f"{len(again)} jobs ran more than once"
        (stats,) = await client.stats(queue)
        assert (stats.created, stats.retry, stats.active, stats.failed) == (0, 0, 0, 0), stats
        for job_id in sent:
            info = await client.get_job(job_id)
            assert info.state is JobState.COMPLETED, info

        # Sends work after the restart, and the worker is woken for them.
        new_id = await client.send(queue, {"i": total})
        assert new_id is not None

        async def new_job_completed() -> bool:
            assert new_id is not None
            return (await client.get_job(new_id)).state is JobState.COMPLETED

        await _eventually(new_job_completed, 10.0, "the job sent after the restart completed")
        assert len(runs[new_id]) == 1
