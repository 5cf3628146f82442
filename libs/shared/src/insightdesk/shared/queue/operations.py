"""Operations on existing jobs, statistics, and claiming/settling jobs by hand: everything of
the client besides queue definitions, sending and the worker loop. :class:`QueueClient`
inherits it."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
from psycopg.rows import dict_row, tuple_row
from psycopg_pool import AsyncConnectionPool

from insightdesk.shared.errors import (
    DatabaseError,
    InvalidArgument,
    JobNotFound,
    QueueError,
    QueueNotFound,
)
from insightdesk.shared.queue.connections import Executor, borrow
from insightdesk.shared.queue.jobs import Job, JobInfo, JobState, QueueStats
from insightdesk.shared.queue.options import validate_name
from insightdesk.shared.queue.payloads import to_json
from insightdesk.shared.queue.statements import Statements
from insightdesk.shared.queue.worker import DEFAULT_HEARTBEAT, error_document


def wrap_error(exc: psycopg.Error, action: str) -> QueueError:
    """The project error for a psycopg error at the engine's database boundary."""
    if isinstance(exc, psycopg.errors.DataError | psycopg.errors.InvalidTextRepresentation):
        return InvalidArgument(f"{action}: the database rejected a value: {exc}")
    return DatabaseError(f"{action} failed: {exc}")


class QueueOperations:
    """Cancel, resume, retry, delete, redrive, find; counts per queue and state; claiming and
    settling jobs by hand (claim, complete, fail, snooze)."""

    pool: AsyncConnectionPool[Any]
    schema: str
    sql: Statements
    _keyed: dict[str, bool]  # queue -> singleton/stately policy (which claim statement)

    # ------------------------------------------------------------------ operations

    async def cancel(self, *ids: uuid.UUID) -> list[uuid.UUID]:
        return [r["id"] for r in await self._fetch("cancel", {"ids": list(ids)})]

    async def resume(self, *ids: uuid.UUID) -> list[uuid.UUID]:
        return [r["id"] for r in await self._fetch("resume", {"ids": list(ids)})]

    async def retry(self, *ids: uuid.UUID) -> list[uuid.UUID]:
        """Give failed or cancelled jobs another attempt, now."""
        return [r["id"] for r in await self._fetch("retry", {"ids": list(ids)})]

    async def delete(self, *ids: uuid.UUID) -> list[uuid.UUID]:
        return [r["id"] for r in await self._fetch("delete", {"ids": list(ids)})]

    async def redrive(self, dead_letter_queue: str, *, limit: int = 1000) -> int:
        """Send queued jobs of a dead-letter queue back to their source queues; returns count."""
        rows = await self._fetch(
            "redrive", {"name": validate_name(dead_letter_queue), "limit": limit}
        )
        return int(rows[0]["moved"])

    async def get_job(self, job_id: uuid.UUID) -> JobInfo:
        rows = await self._fetch("get_job", {"id": job_id})
        if not rows:
            raise JobNotFound(f"no job with id {job_id}")
        return JobInfo.from_row(rows[0])

    async def find_jobs(
        self,
        queue: str,
        *,
        singleton_key: str | None = None,
        state: JobState | None = None,
        limit: int = 100,
    ) -> list[JobInfo]:
        params = {
            "name": validate_name(queue),
            "key": singleton_key,
            "state": state.value if state else None,
            "limit": limit,
        }
        return [JobInfo.from_row(r) for r in await self._fetch("find_jobs", params)]

    # ------------------------------------------------------------------ statistics

    async def stats(self, queue: str | None = None) -> list[QueueStats]:
        rows = await self._fetch("stats", {"name": validate_name(queue) if queue else None})
        return [QueueStats(**r) for r in rows]

    async def ready_count(self, queue: str) -> int:
        """Ready jobs of ``queue``; the same function a KEDA postgresql scaler queries."""
        async with borrow(self.pool, None) as c:
            cur = await c.execute(
                f"SELECT {self._schema_ident()}.ready_count(%s)",  # quoted identifier
                (validate_name(queue),),
            )
            row = await cur.fetchone()
        assert row is not None
        return int(row[0])

    def scaler_query(self, queue: str) -> str:
        """The SQL to put in a KEDA ``postgresql`` trigger for ``queue``."""
        validate_name(queue)
        literal = queue.replace("'", "''")
        return f"SELECT {self._schema_ident()}.ready_count('{literal}')"

    def _schema_ident(self) -> str:
        return psycopg.sql.Identifier(self.schema).as_string(None)

    # ------------------------------------------------------------------ claims and acks by hand

    async def claim(
        self, queue: str, limit: int = 1, *, default_heartbeat: float = DEFAULT_HEARTBEAT
    ) -> list[Job]:
        """Claim up to ``limit`` ready jobs of ``queue`` (priority, then age; rows other
        consumers hold are skipped) without running them: the caller settles each with
        :meth:`complete`, :meth:`fail` or :meth:`snooze`, carrying its ``lease``.

        Nothing heartbeats these jobs: one not settled within its heartbeat period
        (``default_heartbeat`` unless the job or queue sets one) is presumed dead and crash
        recovery puts it back in the queue, after which its lease no longer settles it.
        """
        validate_name(queue)
        if limit < 1:
            raise InvalidArgument(f"limit must be >= 1, got {limit}")
        keyed = self._keyed.get(queue)
        if keyed is None:
            found = await self._fetch("get_queue", {"name": queue})
            if not found:
                raise QueueNotFound(f"queue {queue!r} does not exist")
            keyed = found[0]["policy"] in {"singleton", "stately"}
            self._keyed[queue] = keyed
        params = {
            "done_ids": [],
            "done_leases": [],
            "done_outputs": [],
            "name": queue,
            "limit": limit,
            "default_heartbeat": default_heartbeat,
        }
        async with borrow(self.pool, None) as c:
            try:
                cur = c.cursor(row_factory=tuple_row, binary=True)
                await cur.execute(self.sql["fetch_keyed" if keyed else "fetch"], params)
                rows = await cur.fetchall()
            except psycopg.errors.UniqueViolation:
                return []  # raced another consumer for a singleton key: nothing claimed
            except psycopg.Error as exc:
                raise wrap_error(exc, "claim") from exc
        return [Job.from_claim(queue, r) for r in rows]

    async def fail(
        self,
        job: Job,
        error: dict[str, Any] | BaseException,
        *,
        delay: float | None = None,
        final: bool = False,
    ) -> bool:
        """A failed attempt of a claimed job: retried after ``delay`` (default: the job's retry
        policy) while attempts are left, else failed into its dead-letter queue; ``final``
        fails it at once. ``error`` (an exception or a JSON object) is stored as its output.
        False when ``job``'s lease no longer holds (the job was settled or re-queued)."""
        if delay is not None and delay < 0:
            raise InvalidArgument(f"delay must be >= 0 seconds, got {delay}")
        document = error_document(error) if isinstance(error, BaseException) else error
        params = {
            "ids": [job.id],
            "leases": [job.lease],
            "errors": [to_json(document, "error")],
            "delays": [delay],
            "final": [final],
        }
        return bool(await self._fetch("fail", params))

    async def snooze(self, job: Job, delay: float) -> bool:
        """Put a claimed job back in the queue to run after ``delay`` seconds, without using an
        attempt. False when ``job``'s lease no longer holds."""
        if delay < 0:
            raise InvalidArgument(f"delay must be >= 0 seconds, got {delay}")
        params = {"ids": [job.id], "leases": [job.lease], "delays": [float(delay)]}
        return bool(await self._fetch("snooze", params))

    async def complete(
        self,
        job_id: uuid.UUID,
        lease: uuid.UUID,
        output: Any = None,
        *,
        conn: Executor | None = None,
    ) -> bool:
        """Complete a claimed job, e.g. in the handler's own transaction (effectively once)."""
        params = {"ids": [job_id], "leases": [lease], "outputs": [to_json(output, "output")]}
        return bool(await self._fetch("complete", params, conn=conn))

    # ------------------------------------------------------------------ plumbing

    async def _execute(
        self, name: str, params: dict[str, Any], *, conn: Executor | None = None
    ) -> None:
        async with borrow(self.pool, conn) as c:
            try:
                await c.execute(self.sql[name], params)
            except psycopg.errors.IntegrityError:
                raise
            except psycopg.Error as exc:
                raise wrap_error(exc, name) from exc

    async def _fetch(
        self, name: str, params: dict[str, Any], *, conn: Executor | None = None
    ) -> list[dict[str, Any]]:
        async with borrow(self.pool, conn) as c:
            try:
                cur = c.cursor(row_factory=dict_row)
                await cur.execute(self.sql[name], params)
                return await cur.fetchall()
            except psycopg.Error as exc:
                raise wrap_error(exc, name) from exc
