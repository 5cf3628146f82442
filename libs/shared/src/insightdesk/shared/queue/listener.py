"""One LISTEN connection per process, fanning NOTIFY wake-ups out to the workers of each queue.

Inserts announce their queue at commit (a statement trigger calls ``pg_notify``). If the
connection drops, the listener reconnects with backoff and then wakes every worker, because
notifications sent while it was away are lost; workers also poll, so nothing depends on NOTIFY
alone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

from insightdesk.shared.queue.tasks import cancel_and_wait

log = logging.getLogger(__name__)

WakeCallback = Callable[[], None]


class Listener:
    def __init__(self, dsn: str, channel: str) -> None:
        self._dsn = dsn
        self._channel = channel
        self._callbacks: dict[str, set[WakeCallback]] = {}
        self._task: asyncio.Task[None] | None = None
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self.connected = asyncio.Event()

    def register(self, queue: str, callback: WakeCallback) -> None:
        self._callbacks.setdefault(queue, set()).add(callback)
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"listen:{self._channel}")

    def unregister(self, queue: str, callback: WakeCallback) -> None:
        self._callbacks.get(queue, set()).discard(callback)

    def _wake_all(self) -> None:
        for callbacks in list(self._callbacks.values()):
            for callback in list(callbacks):
                callback()

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._dsn, autocommit=True
                ) as conn:
                    self._conn = conn
                    await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
                    self.connected.set()
                    backoff = 0.1
                    self._wake_all()  # anything sent while we were not listening
                    async for note in conn.notifies():
                        for callback in list(self._callbacks.get(note.payload, ())):
                            callback()
            except asyncio.CancelledError:
                raise
            except (psycopg.Error, OSError) as exc:
                log.warning(
                    "queue listener lost its connection (%s); retrying in %.1fs", exc, backoff
                )
            finally:
                self.connected.clear()
                self._conn = None
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    async def close(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None
