"""A database outage without touching the shared server: a TCP proxy in the test process that
forwards to PostgreSQL until told to black-hole the traffic (not a test module)."""

from __future__ import annotations

import asyncio
import contextlib

from psycopg import conninfo


def proxied_dsn(dsn: str, port: int) -> str:
    """``dsn`` through the proxy listening on ``port`` (connects give up after 2 s)."""
    return conninfo.make_conninfo(dsn, host="127.0.0.1", port=port, connect_timeout=2)


class BlackHoleProxy:
    """A TCP proxy to PostgreSQL that, once :meth:`black_hole` is called, swallows every byte
    both ways and accepts new connections without answering: an outage the client cannot see
    as an error, as a network partition looks."""

    def __init__(self, dsn: str) -> None:
        params = conninfo.conninfo_to_dict(dsn)
        self.host = str(params.get("host") or "127.0.0.1")
        self.port = int(params.get("port") or 5432)
        self.holes = False
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    def black_hole(self) -> None:
        self.holes = True

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        if self.holes:
            await self._pipe(reader, None)
            return
        up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
        self._writers.append(up_writer)
        for a, b in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(a, b))
            self._tasks.add(task)

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter | None
    ) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await reader.read(65536):
                if writer is not None and not self.holes:
                    writer.write(data)
                    await writer.drain()
