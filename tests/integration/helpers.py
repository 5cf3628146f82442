"""Small helpers for integration tests: polling with deadlines (never bare long sleeps) and
scratch databases."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator

import psycopg
from psycopg import sql

from insightdesk.shared.queue import JobState, QueueClient


async def wait_until(
    predicate: Callable[[], Awaitable[bool]],
    timeout: float = 10.0,
    interval: float = 0.02,
    output: Callable[[], str] | None = None,
) -> None:
    """Poll ``predicate`` until true; past ``timeout`` fail, with the tail of ``output()`` (a
    child process's log, say) in the message."""
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            tail = f"\n--- output ---\n{output()[-4000:]}" if output is not None else ""
            raise AssertionError(f"condition not met within {timeout}s{tail}")
        await asyncio.sleep(interval)


async def wait_for_state(
    client: QueueClient, job_id: uuid.UUID, state: JobState, timeout: float = 10.0
) -> None:
    async def reached() -> bool:
        return (await client.get_job(job_id)).state == state

    await wait_until(reached, timeout)


class OutputDrain:
    """Reads a child process's pipe as it writes, so a chatty child never blocks on a full pipe
    (a 64 KiB buffer nobody reads would stall it mid-log); ``text()`` is everything so far."""

    def __init__(self, stream: asyncio.StreamReader | None) -> None:
        assert stream is not None, "start the process with this pipe"
        self._data = bytearray()
        self._task = asyncio.create_task(self._read(stream))

    async def _read(self, stream: asyncio.StreamReader) -> None:
        while chunk := await stream.read(65536):
            self._data.extend(chunk)

    def text(self) -> str:
        return self._data.decode(errors="replace")

    async def finished(self) -> str:
        """Everything the child wrote, once it closed the pipe."""
        await asyncio.wait_for(self._task, 10)
        return self.text()


@contextlib.contextmanager
def scratch_database(server_dsn: str, prefix: str) -> Iterator[str]:
    """A new, empty database on the test server (for schema upgrades from an old version);
    yields its DSN and drops it afterwards, connections and all."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    params = psycopg.conninfo.conninfo_to_dict(server_dsn)
    params["dbname"] = name
    try:
        yield psycopg.conninfo.make_conninfo("", **params)
    finally:
        with psycopg.connect(server_dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
