"""Operator control over the engine: pause/resume, the worker registry, statistics history,
job search and bulk actions, schedules. The console API, its pages and the CLI all go through
:class:`QueueControl`, which speaks to the database only through the client's statements.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any

from insightdesk.shared.errors import InvalidArgument, JobNotFound, QueueError, QueueNotFound
from insightdesk.shared.queue.cron import load_zone, parse_cron
from insightdesk.shared.queue.jobs import JobState
from insightdesk.shared.queue.options import JobOptions, validate_name
from insightdesk.shared.queue.scheduler import slot_job_id
from insightdesk.shared.queue.search import (
    BULK_ACTIONS,
    MAX_PAGE,
    JobDetail,
    JobFilter,
    JobSummary,
    SearchPage,
    trace_id_of,
)

if TYPE_CHECKING:
    from insightdesk.shared.queue.client import QueueClient
    from insightdesk.shared.queue.store import PgStore


class ScheduleNotFound(QueueError, LookupError):
    """No cron schedule has the given name."""


WORKER_TTL = 30.0
"""Seconds after its last registry heartbeat at which a worker counts as gone."""

HISTORY_EVERY = 10
"""Seconds between statistics snapshots (one row per queue per slot)."""

HISTORY_RETENTION = 7 * 24 * 3600.0


@dataclass(frozen=True, slots=True)
class QueueView:
    name: str
    policy: str
    paused: bool
    dead_letter: str | None
    is_dead_letter: bool
    workers: int
    concurrency: int


@dataclass(frozen=True, slots=True)
class WorkerView:
    id: uuid.UUID
    host: str
    pid: int
    queue: str
    concurrency: int
    started_on: datetime
    heartbeat_on: datetime
    paused: bool | None


@dataclass(frozen=True, slots=True)
class HistoryPoint:
    slot: datetime
    name: str
    ready: int
    delayed: int
    active: int
    completed: int
    failed: int
    wait_p50: float | None
    wait_p95: float | None
    run_p50: float | None
    run_p95: float | None


@dataclass(frozen=True, slots=True)
class ScheduleView:
    name: str
    queue: str
    cron: str
    timezone: str
    last_slot: datetime | None
    next_slot: datetime | None
    last_job_id: uuid.UUID | None
    last_job_state: str | None


@dataclass(frozen=True, slots=True)
class BulkResult:
    action: str
    matched: int
    affected: int


async def snapshot(store: PgStore, *, every: int = HISTORY_EVERY) -> None:
    """This slot's history row per queue, unless another process wrote the slot."""
    await store.execute("snapshot_history", {"every": every})


async def prune_history(store: PgStore, retention: float = HISTORY_RETENTION) -> None:
    await store.execute("prune_history", {"retention": retention})


Progress = Callable[[int, int], None]
"""Called after each batch of a bulk action with (jobs matched so far, jobs changed so far)."""


class QueueControl:
    """Operator actions and read models over one engine schema."""

    def __init__(self, client: QueueClient, *, worker_ttl: float = WORKER_TTL) -> None:
        self.client = client
        self.worker_ttl = worker_ttl

    # ------------------------------------------------------------------ queues

    async def pause(self, queue: str) -> None:
        """Stop every worker of ``queue`` from claiming (sending still works)."""
        await self._set_paused(queue, paused=True)

    async def resume(self, queue: str) -> None:
        await self._set_paused(queue, paused=False)

    async def _set_paused(self, queue: str, *, paused: bool) -> None:
        rows = await self.client.store.fetch(
            "set_paused", {"name": validate_name(queue), "paused": paused}
        )
        if not rows:
            raise QueueNotFound(f"queue {queue!r} does not exist")

    async def queues(self, queue: str | None = None) -> list[QueueView]:
        params = {"name": validate_name(queue) if queue else None, "ttl": self.worker_ttl}
        rows = await self.client.store.fetch("queue_overview", params)
        if queue and not rows:
            raise QueueNotFound(f"queue {queue!r} does not exist")
        return [QueueView(**r) for r in rows]

    async def workers(self, queue: str | None = None) -> list[WorkerView]:
        """Who is working on what: every live worker of every process."""
        params = {"name": validate_name(queue) if queue else None, "ttl": self.worker_ttl}
        return [WorkerView(**r) for r in await self.client.store.fetch("list_workers", params)]

    # ------------------------------------------------------------------ history

    async def snapshot(self, *, every: int = HISTORY_EVERY) -> None:
        """Write this slot's history row per queue (no-op when another process did)."""
        await snapshot(self.client.store, every=every)

    async def prune_history(self, retention: float = HISTORY_RETENTION) -> None:
        await prune_history(self.client.store, retention)

    async def history(
        self, seconds: float = 3600.0, queue: str | None = None
    ) -> list[HistoryPoint]:
        if not 0 < seconds <= HISTORY_RETENTION:
            raise InvalidArgument(f"seconds must be in (0, {HISTORY_RETENTION:.0f}]")
        params = {"seconds": seconds, "name": validate_name(queue) if queue else None}
        return [HistoryPoint(**r) for r in await self.client.store.fetch("history", params)]

    # ------------------------------------------------------------------ jobs

    async def search(
        self, where: JobFilter, *, cursor: int | None = None, limit: int = 50
    ) -> SearchPage:
        """One page of matching jobs, newest first; pass ``next_cursor`` for the next page."""
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidArgument(f"limit must be between 1 and {MAX_PAGE}, got {limit}")
        if cursor is not None and cursor < 0:
            raise InvalidArgument(f"cursor must be >= 0, got {cursor}")
        params = where.params(cursor, limit)
        if where.id is not None:
            rows = await self.client.store.fetch("search_job_by_id", params)
        else:
            rows = await self.client.store.fetch("search_jobs", params)
        jobs = [JobSummary(**r) for r in rows]
        next_cursor = jobs[-1].seq if len(jobs) == limit and where.id is None else None
        return SearchPage(jobs, next_cursor)

    async def count(self, where: JobFilter) -> int:
        """How many jobs ``where`` matches."""
        rows = await self.client.store.fetch("count_jobs", where.params(None, 1))
        return int(rows[0]["total"])

    async def job(self, job_id: uuid.UUID) -> JobDetail:
        rows = await self.client.store.fetch("job_detail", {"id": job_id})
        if not rows:
            raise JobNotFound(f"no job with id {job_id}")
        row = dict(rows[0])
        row["errors"] = row["errors"] or []
        row["trace_id"] = trace_id_of(row["headers"])
        row["state"] = JobState(row["state"])
        return JobDetail(**row)

    async def act(self, action: str, ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
        """Apply ``action`` (retry, cancel, delete, redrive, resume) to the given jobs; returns
        the ids it changed (jobs in a state the action does not apply to are left alone)."""
        if action not in BULK_ACTIONS:
            raise InvalidArgument(f"action must be one of {', '.join(BULK_ACTIONS)}")
        if not ids:
            return []
        if action == "redrive":
            rows = await self.client.store.fetch("redrive_ids", {"ids": list(ids)})
            return [r["id"] for r in rows]
        operation: Callable[..., Any] = getattr(self.client, action)
        changed: list[uuid.UUID] = await operation(*ids)
        return changed

    async def bulk(
        self,
        action: str,
        where: JobFilter,
        *,
        batch: int = 500,
        progress: Progress | None = None,
    ) -> BulkResult:
        """Apply ``action`` to every job matching ``where``, ``batch`` jobs per round trip."""
        if action not in BULK_ACTIONS:
            raise InvalidArgument(f"action must be one of {', '.join(BULK_ACTIONS)}")
        if not 1 <= batch <= MAX_PAGE:
            raise InvalidArgument(f"batch must be between 1 and {MAX_PAGE}")
        matched = affected = 0
        cursor: int | None = None
        while True:
            page = await self.search(where, cursor=cursor, limit=batch)
            if not page.jobs:
                break
            matched += len(page.jobs)
            affected += len(await self.act(action, [j.id for j in page.jobs]))
            if progress is not None:
                progress(matched, affected)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        return BulkResult(action, matched, affected)

    # ------------------------------------------------------------------ schedules

    async def schedules(self) -> list[ScheduleView]:
        """Every cron schedule with its last and next slot and the state of its last job."""
        found: list[ScheduleView] = []
        for row in await self.client.store.fetch("list_schedules", {}):
            last: datetime | None = row["last_slot"]
            try:
                nxt: datetime | None = parse_cron(row["cron"]).next_after(
                    row["db_now"], load_zone(row["timezone"])
                )
            except InvalidArgument:
                nxt = None
            job_id = state = None
            if last is not None:
                job_id = slot_job_id(self.client.schema, row["name"], last)
                rows = await self.client.store.fetch("job_detail", {"id": job_id})
                state = rows[0]["state"] if rows else None
            found.append(
                ScheduleView(
                    row["name"],
                    row["queue"],
                    row["cron"],
                    row["timezone"],
                    last,
                    nxt,
                    job_id if state else None,
                    state,
                )
            )
        return found

    async def run_schedule(self, name: str) -> uuid.UUID | None:
        """Send the job of schedule ``name`` now, outside its cron slots."""
        for row in await self.client.store.fetch("list_schedules", {}):
            if row["name"] == name:
                wire: dict[str, Any] = row["options"] or {}
                allowed = {f.name for f in fields(JobOptions)} - {"id", "headers"}
                opts = JobOptions(
                    headers={"schedule": name, "manual": True},
                    **{k: v for k, v in wire.items() if k in allowed},
                )
                return await self.client.send(row["queue"], row["data"], opts)
        raise ScheduleNotFound(f"no schedule named {name!r}")
