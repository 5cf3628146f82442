"""Operations on existing jobs and statistics: the part of the client that inspects and
repairs rather than produces or consumes. :class:`QueueClient` inherits it."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from insightdesk.shared.errors import DatabaseError, InvalidArgument, JobNotFound, QueueError
from insightdesk.shared.queue.connections import Executor, borrow
from insightdesk.shared.queue.jobs import JobInfo, JobState, QueueStats
from insightdesk.shared.queue.options import validate_name
from insightdesk.shared.queue.statements import Statements


def wrap_error(exc: psycopg.Error, action: str) -> QueueError:
    """The project error for a psycopg error at the engine's database boundary."""
    if isinstance(exc, psycopg.errors.DataError | psycopg.errors.InvalidTextRepresentation):
        return InvalidArgument(f"{action}: the database rejected a value: {exc}")
    return DatabaseError(f"{action} failed: {exc}")


class QueueOperations:
    """Cancel, resume, retry, delete, redrive, find; counts per queue and state."""

    pool: AsyncConnectionPool[Any]
    schema: str
    sql: Statements

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
