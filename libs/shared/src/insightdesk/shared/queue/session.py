"""The consumer loop's PostgreSQL connection: claims for many queues, settles, waits for NOTIFY.

The session's connection also LISTENs on the channel of each queue the loop serves (one channel
per queue, see :func:`~insightdesk.shared.queue.statements.queue_channel`), so a NOTIFY wakes the
very backend that then runs the claim, and only the loops that serve that queue. A
notification's payload is the queue name; the session returns the names to the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from dataclasses import fields
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql
from psycopg.rows import RowMaker

from insightdesk.shared.errors import ConnectionLost, DatabaseError
from insightdesk.shared.queue.jobs import Job
from insightdesk.shared.queue.payloads import to_json
from insightdesk.shared.queue.ports import (
    Claimed,
    ClaimRequest,
    Completion,
    Failure,
    Postponed,
)
from insightdesk.shared.queue.statements import queue_channel

if TYPE_CHECKING:
    from insightdesk.shared.queue.store import PgStore


_JOB_FIELDS = tuple(f.name for f in fields(Job))
_HEADERS = _JOB_FIELDS.index("headers")


def job_picker(cursor: psycopg.AsyncCursor[Any]) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    """Pick the Job fields, in Job's order, out of a claim statement's row, by column name
    (columns that are not fields of Job, such as the statement's own bookkeeping, are ignored)."""
    names = [c.name for c in cursor.description or ()]
    missing = [f for f in _JOB_FIELDS if f not in names]
    if missing:
        raise DatabaseError(f"claim statement lacks the Job columns {missing}")
    return itemgetter(*(names.index(f) for f in _JOB_FIELDS))


def job_rows(cursor: psycopg.AsyncCursor[Any]) -> RowMaker[Job]:
    """Rows of a claim statement as :class:`Job` objects (see :func:`job_picker`)."""
    return _job_maker(job_picker(cursor))


def _job_maker(pick: Callable[[Sequence[Any]], tuple[Any, ...]]) -> RowMaker[Job]:
    def make(values: Sequence[Any]) -> Job:
        fields = pick(values)
        job = Job(*fields)
        if fields[_HEADERS] is None:  # stored NULL: no headers (saves parsing '{}' per job)
            job.headers = {}
        return job

    return make


def failure_params(failures: list[Failure]) -> dict[str, Any]:
    return {
        "ids": [f.job.id for f in failures],
        "leases": [f.job.lease for f in failures],
        "errors": [to_json(f.error, "error", replace_surrogates=True) for f in failures],
        "delays": [f.delay for f in failures],
        "final": [f.final for f in failures],
    }


def postpone_params(postponed: list[Postponed]) -> dict[str, Any]:
    return {
        "ids": [p.job.id for p in postponed],
        "leases": [p.job.lease for p in postponed],
        "delays": [float(p.delay) for p in postponed],
    }


class PgClaimSession:
    """A :class:`~insightdesk.shared.queue.ports.ClaimSession` on one pooled connection."""

    def __init__(self, store: PgStore, conn: psycopg.AsyncConnection[Any], listen: bool) -> None:
        self._store = store
        self._conn = conn
        self._listen = listen
        self._notified: set[str] = set()
        self._channels: dict[str, str] = {}  # queue -> channel LISTENed on
        # a claim statement's columns never change: map them once per statement, not per call
        self._makers: dict[str, RowMaker[Job]] = {}
        if listen:
            conn.add_notify_handler(self._on_notify)

    def _on_notify(self, note: psycopg.Notify) -> None:
        # notifications that arrive while a statement runs are dispatched here
        self._notified.add(note.payload)

    async def _start(self) -> None:
        # The claim statements take their queues and limits as arrays, so a custom plan is never
        # cheaper than the generic one; yet PostgreSQL's estimate for the generic plan (ten rows
        # per unnest) makes it keep re-planning them on every execution, which cost more than the
        # statement itself. The session's statements are all of that kind: plan them once.
        # A generic plan cannot see the limits either (it takes a LIMIT of a parameter for a
        # tenth of the rows), so with a deep delayed backlog it would join the claimed rows by
        # scanning the job table: every statement of this connection touches a bounded number
        # of rows through an index, so nested loops over index scans are the only plan wanted.
        await self._conn.execute(
            "SET plan_cache_mode = force_generic_plan; SET enable_seqscan = off;"
            " SET enable_hashjoin = off; SET enable_mergejoin = off"
        )

    async def claim(
        self,
        done: list[Completion],
        wanted: list[ClaimRequest],
        *,
        default_heartbeat: float,
    ) -> Claimed:
        plain = [w for w in wanted if not w.keyed and w.limit > 0]
        keyed = [w for w in wanted if w.keyed and w.limit > 0]
        sqls = self._store.sql
        jobs: list[Job] = []
        contended: set[str] = set()
        with self._store.wrapped("claim"):
            if done or plain:
                # one statement for every plain queue: fetch_ready (no promotion of due
                # waiting jobs) only when none of them asks for promotion
                name = "fetch" if any(w.promote for w in plain) else "fetch_ready"
                cur = self._conn.cursor(row_factory=self._rows(name), binary=True)
                await cur.execute(
                    sqls[name],
                    {
                        "done_ids": [d.id for d in done],
                        "done_leases": [d.lease for d in done],
                        "done_outputs": [d.output for d in done],
                        "names": [w.queue for w in plain],
                        "limits": [w.limit for w in plain],
                        "default_heartbeat": default_heartbeat,
                    },
                )
                jobs = await cur.fetchall()
            if keyed:
                cur = self._conn.cursor(row_factory=self._rows("fetch_keyed"), binary=True)
            for w in keyed:
                try:
                    await cur.execute(
                        sqls["fetch_keyed"],
                        {
                            "done_ids": [],
                            "done_leases": [],
                            "done_outputs": [],
                            "name": w.queue,
                            "limit": w.limit,
                            "default_heartbeat": default_heartbeat,
                        },
                    )
                    jobs.extend(await cur.fetchall())
                except psycopg.errors.UniqueViolation:
                    contended.add(w.queue)  # raced another consumer for a key: try again soon
        return Claimed(jobs, frozenset(contended))

    def _rows(self, statement: str) -> Callable[[psycopg.AsyncCursor[Any]], RowMaker[Job]]:
        """A row factory for ``statement`` that maps its columns on first use only."""

        def factory(cursor: psycopg.AsyncCursor[Any]) -> RowMaker[Job]:
            maker = self._makers.get(statement)
            if maker is None:
                maker = self._makers[statement] = job_rows(cursor)
            return maker

        return factory

    async def settle(self, failures: list[Failure], postponed: list[Postponed]) -> None:
        with self._store.wrapped("settle"):
            if failures:
                await self._conn.execute(self._store.sql["fail"], failure_params(failures))
            if postponed:
                await self._conn.execute(self._store.sql["snooze"], postpone_params(postponed))

    async def next_due(self, queues: list[str]) -> dict[str, float]:
        if not queues:
            return {}
        with self._store.wrapped("next_start"):
            cur = await self._conn.execute(self._store.sql["next_start"], {"names": queues})
            rows = await cur.fetchall()
        due: dict[str, float] = {}
        for name, next_start, db_now in rows:
            if next_start is not None:
                due[name] = max(0.0, (next_start - db_now).total_seconds())
        return due

    async def listen_to(self, queues: Collection[str]) -> None:
        if not self._listen:
            return
        wanted = set(queues)
        start = sorted(wanted - self._channels.keys())
        stop = sorted(self._channels.keys() - wanted)
        if not start and not stop:
            return
        schema = self._store.schema
        channels = {q: queue_channel(schema, q) for q in start}
        commands = [sql.SQL("LISTEN {}").format(sql.Identifier(channels[q])) for q in start] + [
            sql.SQL("UNLISTEN {}").format(sql.Identifier(self._channels[q])) for q in stop
        ]
        with self._store.wrapped("listen"):
            await self._conn.execute(sql.SQL("; ").join(commands))
        for q in stop:
            del self._channels[q]
        self._channels.update(channels)

    async def wait(self, wake: asyncio.Event, timeout: float) -> set[str]:
        if self._notified:
            return self._take()
        loop = asyncio.get_running_loop()
        fd = self._conn.pgconn.socket if self._listen else -1
        if fd >= 0:
            loop.add_reader(fd, wake.set)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout)
        finally:
            if fd >= 0:
                loop.remove_reader(fd)
        if fd >= 0:
            pgconn = self._conn.pgconn
            with self._store.wrapped("listen"):
                try:
                    pgconn.consume_input()  # fails if the server went away
                except psycopg.OperationalError as exc:
                    raise ConnectionLost(f"listen connection lost: {exc}") from exc
            while (note := pgconn.notifies()) is not None:
                self._notified.add(note.extra.decode())
        return self._take()

    def _take(self) -> set[str]:
        notified, self._notified = self._notified, set()
        return notified

    @property
    def closed(self) -> bool:
        return bool(self._conn.closed)


@contextlib.asynccontextmanager
async def open_session(store: PgStore, *, listen: bool) -> AsyncIterator[PgClaimSession]:
    """Take a connection for the loop's whole life (LISTENing when asked); give it back clean."""
    pool = store.pool
    started = time.monotonic()
    try:
        conn: psycopg.AsyncConnection[Any] = await pool.getconn()
    except psycopg.Error as exc:
        raise ConnectionLost(
            f"no connection for the consumer after {time.monotonic() - started:.1f}s: {exc}"
        ) from exc
    session = PgClaimSession(store, conn, listen)
    try:
        await session._start()  # the factory finishing its own object
        yield session
    finally:
        if not conn.closed:
            with contextlib.suppress(psycopg.Error):
                await conn.execute(
                    "RESET plan_cache_mode; RESET enable_seqscan; RESET enable_hashjoin;"
                    " RESET enable_mergejoin"
                )
                if listen:
                    await conn.execute("UNLISTEN *")
        with contextlib.suppress(Exception):
            await pool.putconn(conn)
