"""The console's JSON API (documented in the app's OpenAPI): the seed's ``stats``, ``failed``
and ``retry``, and everything the dashboard does. Bearer token, or the page session cookie with
``X-CSRF-Token`` on state-changing calls."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from insightdesk.shared.ops.auth import CSRF_HEADER, NotAuthenticated
from insightdesk.shared.ops.runtime import Console, QueueRow, console_of
from insightdesk.shared.queue.control import (
    BulkResult,
    HistoryPoint,
    QueueView,
    ScheduleView,
    WorkerView,
)
from insightdesk.shared.queue.search import MAX_PAGE, JobDetail, JobFilter, JobSummary

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def require_operator(request: Request) -> Console:
    """The bearer token, or a page session (plus its CSRF token on state changes)."""
    console = console_of(request)
    auth = console.auth
    if auth.bearer_ok(request):
        return console
    session = auth.session(request)
    if session is None:
        raise NotAuthenticated("operator token required")
    if request.method not in SAFE_METHODS:
        auth.check_csrf(session, request.headers.get(CSRF_HEADER))
    return console


Operator = Annotated[Console, Depends(require_operator)]
router = APIRouter(prefix="/api", tags=["console"])


class JobPage(BaseModel):
    jobs: list[JobSummary]
    next_cursor: int | None = Field(
        description="pass as cursor= for the next page; null at the end"
    )


class JobAction(BaseModel):
    action: Literal["retry", "cancel", "delete", "redrive", "resume"]
    ids: list[uuid.UUID] = Field(min_length=1, max_length=MAX_PAGE)


class ActionResult(BaseModel):
    action: str
    requested: int
    affected: int
    ids: list[uuid.UUID]


class FilterBody(BaseModel):
    queue: list[str] = Field(default_factory=list)
    state: list[str] = Field(default_factory=list)
    key: str | None = None
    id: uuid.UUID | None = None
    since: datetime | None = None
    until: datetime | None = None
    data: dict[str, object] | None = None

    def to_filter(self) -> JobFilter:
        return JobFilter.build(
            queues=self.queue,
            states=self.state,
            singleton_key=self.key,
            id=self.id,
            since=self.since,
            until=self.until,
            data=self.data,
        )


class BulkAction(BaseModel):
    action: Literal["retry", "cancel", "delete", "redrive", "resume"]
    filter: FilterBody
    batch: int = Field(default=500, ge=1, le=MAX_PAGE)


class RetryRequest(BaseModel):
    ids: list[uuid.UUID] = Field(min_length=1, max_length=MAX_PAGE)


class Overview(BaseModel):
    queues: list[QueueRow]
    history: list[HistoryPoint]
    workers: list[WorkerView]


class QueueDetail(BaseModel):
    queue: QueueRow
    workers: list[WorkerView]


class Redriven(BaseModel):
    queue: str
    matched: int
    moved: int


class ScheduleRun(BaseModel):
    schedule: str
    job_id: uuid.UUID | None


def job_filter(
    *,
    queue: Annotated[list[str], Query(description="queue name(s)")] = [],  # noqa: B006
    state: Annotated[list[str], Query(description="job state(s)")] = [],  # noqa: B006
    key: Annotated[str | None, Query(description="singleton key")] = None,
    id: Annotated[str | None, Query(description="job id")] = None,
    since: Annotated[datetime | None, Query(description="created at or after")] = None,
    until: Annotated[datetime | None, Query(description="created before")] = None,
    data: Annotated[str | None, Query(description="JSON object the data contains")] = None,
) -> JobFilter:
    return JobFilter.build(
        queues=queue, states=state, singleton_key=key, id=id, since=since, until=until, data=data
    )


Filter = Annotated[JobFilter, Depends(job_filter)]
Cursor = Annotated[int | None, Query(ge=0, description="next_cursor of the previous page")]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]


# ---------------------------------------------------------------------- the seed's three


@router.get("/stats", summary="Counts per queue and state", response_model=list[QueueRow])
async def stats(console: Operator) -> list[QueueRow]:
    return await console.queue_rows()


@router.get("/failed", summary="Failed jobs, newest first", response_model=JobPage)
async def failed(
    console: Operator,
    queue: Annotated[list[str], Query()] = [],  # noqa: B006
    cursor: Cursor = None,
    limit: Limit = 50,
) -> JobPage:
    page = await console.control.search(
        JobFilter.build(queues=queue, states=["failed"]), cursor=cursor, limit=limit
    )
    return JobPage(jobs=page.jobs, next_cursor=page.next_cursor)


@router.post("/retry", summary="Retry failed or cancelled jobs", response_model=ActionResult)
async def retry(console: Operator, body: RetryRequest) -> ActionResult:
    ids = await console.control.act("retry", body.ids)
    return ActionResult(action="retry", requested=len(body.ids), affected=len(ids), ids=ids)


# ---------------------------------------------------------------------- overview and queues


@router.get(
    "/overview", summary="Queues, the last hour's history and workers", response_model=Overview
)
async def overview(
    console: Operator, seconds: Annotated[float, Query(gt=0, le=86400)] = 3600
) -> Overview:
    return Overview(
        queues=await console.queue_rows(),
        history=await console.control.history(seconds),
        workers=await console.control.workers(),
    )


@router.get(
    "/queues",
    summary="Queue definitions with pause flag and workers",
    response_model=list[QueueView],
)
async def queues(console: Operator) -> list[QueueView]:
    return await console.control.queues()


@router.get("/queues/{name}", summary="One queue's counts and workers", response_model=QueueDetail)
async def queue(console: Operator, name: str) -> QueueDetail:
    rows = await console.queue_rows(name)
    return QueueDetail(queue=rows[0], workers=await console.control.workers(name))


@router.post("/queues/{name}/pause", summary="Stop workers claiming from a queue", status_code=204)
async def pause(console: Operator, name: str) -> Response:
    await console.control.pause(name)
    return Response(status_code=204)


@router.post("/queues/{name}/resume", summary="Let workers claim again", status_code=204)
async def resume(console: Operator, name: str) -> Response:
    await console.control.resume(name)
    return Response(status_code=204)


@router.get("/history", summary="10-second statistics snapshots", response_model=list[HistoryPoint])
async def history(
    console: Operator,
    seconds: Annotated[float, Query(gt=0, le=7 * 86400)] = 3600,
    queue: str | None = None,
) -> list[HistoryPoint]:
    return await console.control.history(seconds, queue)


@router.get("/workers", summary="Who is working on what", response_model=list[WorkerView])
async def workers(console: Operator, queue: str | None = None) -> list[WorkerView]:
    return await console.control.workers(queue)


# ---------------------------------------------------------------------- jobs


@router.get("/jobs", summary="Search jobs (keyset pagination)", response_model=JobPage)
async def search_jobs(
    console: Operator, where: Filter, cursor: Cursor = None, limit: Limit = 50
) -> JobPage:
    page = await console.control.search(where, cursor=cursor, limit=limit)
    return JobPage(jobs=page.jobs, next_cursor=page.next_cursor)


@router.get("/jobs/{job_id}", summary="Everything about one job", response_model=JobDetail)
async def job(console: Operator, job_id: uuid.UUID) -> JobDetail:
    return await console.control.job(job_id)


@router.post(
    "/jobs/{job_id}/{action}",
    summary="Retry, cancel, resume or redrive one job",
    response_model=ActionResult,
)
async def job_action(
    console: Operator,
    job_id: uuid.UUID,
    action: Literal["retry", "cancel", "resume", "redrive"],
) -> ActionResult:
    await console.control.job(job_id)  # 404 for an unknown id
    ids = await console.control.act(action, [job_id])
    return ActionResult(action=action, requested=1, affected=len(ids), ids=ids)


@router.delete("/jobs/{job_id}", summary="Delete one job", response_model=ActionResult)
async def delete_job(console: Operator, job_id: uuid.UUID) -> ActionResult:
    await console.control.job(job_id)
    ids = await console.control.act("delete", [job_id])
    return ActionResult(action="delete", requested=1, affected=len(ids), ids=ids)


@router.post("/jobs/actions", summary="Apply an action to chosen jobs", response_model=ActionResult)
async def jobs_action(console: Operator, body: JobAction) -> ActionResult:
    ids = await console.control.act(body.action, body.ids)
    return ActionResult(action=body.action, requested=len(body.ids), affected=len(ids), ids=ids)


@router.post(
    "/jobs/bulk",
    summary="Apply an action to every job matching a filter",
    response_model=BulkResult,
)
async def jobs_bulk(console: Operator, body: BulkAction) -> BulkResult:
    return await console.control.bulk(body.action, body.filter.to_filter(), batch=body.batch)


@router.post(
    "/dead-letters/{name}/redrive",
    summary="Send a dead-letter queue's jobs back",
    response_model=Redriven,
)
async def redrive(console: Operator, name: str) -> Redriven:
    await console.control.queues(name)  # 404 for an unknown queue
    result = await console.control.bulk(
        "redrive", JobFilter.build(queues=[name], states=["created", "retry"])
    )
    return Redriven(queue=name, matched=result.matched, moved=result.affected)


# ---------------------------------------------------------------------- schedules


@router.get(
    "/schedules",
    summary="Cron schedules: next and last slot, last job state",
    response_model=list[ScheduleView],
)
async def schedules(console: Operator) -> list[ScheduleView]:
    return await console.control.schedules()


@router.post(
    "/schedules/{name}/run", summary="Send a schedule's job now", response_model=ScheduleRun
)
async def run_schedule(console: Operator, name: str) -> ScheduleRun:
    return ScheduleRun(schedule=name, job_id=await console.control.run_schedule(name))
