"""The scheduler's HTTP API: ``GET /schedules`` and ``POST /schedules/{name}/run`` (operator
token). ``/healthz``, ``/readyz`` and ``/metrics`` come from the shared service entry."""

from __future__ import annotations

import hmac
import uuid
from datetime import datetime
from typing import Annotated, cast

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, SecretStr

from insightdesk.scheduler.runtime import Scheduler, UnknownSchedule
from insightdesk.shared.errors import QueueNotFound


class ScheduleView(BaseModel):
    name: str
    cron: str
    timezone: str
    target: str
    """``queue:<name>`` or ``event:<name>``."""
    enabled: bool
    state: str
    """``active``, ``waiting`` (its queue does not exist yet: see ``detail``), ``disabled`` or
    ``failed`` (the engine refused it: see ``detail``)."""
    detail: str
    next_slot: datetime | None
    last_slot: datetime | None
    last_job_id: uuid.UUID | None
    last_job_state: str | None
    description: str


class Fired(BaseModel):
    schedule: str
    job_id: uuid.UUID | None


router = APIRouter()
bearer = HTTPBearer(auto_error=False, description="SCHEDULER_OPERATOR_TOKEN")


def get_scheduler(request: Request) -> Scheduler:
    return cast("Scheduler", request.app.state.scheduler)


def require_operator(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    token = cast("SecretStr | None", request.app.state.operator_token)
    given = credentials.credentials if credentials else ""
    if token is None or not hmac.compare_digest(given.encode(), token.get_secret_value().encode()):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "operator token required",
            headers={"WWW-Authenticate": "Bearer"},
        )


SchedulerDep = Annotated[Scheduler, Depends(get_scheduler)]


@router.get("/schedules", response_model=list[ScheduleView])
async def list_schedules(scheduler: SchedulerDep) -> list[dict[str, object]]:
    """Every configured schedule: its target, state, next and last slot and the last job."""
    return await scheduler.listing()


@router.post(
    "/schedules/{name}/run",
    response_model=Fired,
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[Depends(require_operator)],
)
async def run_schedule(name: str, scheduler: SchedulerDep) -> Fired:
    """Fire the schedule now, outside its slot series."""
    try:
        job_id = await scheduler.run_now(name)
    except UnknownSchedule:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no schedule {name!r}") from None
    except QueueNotFound as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    return Fired(schedule=name, job_id=job_id)


def create_api(scheduler: Scheduler, operator_token: SecretStr | None) -> FastAPI:
    app = FastAPI(title="InsightDesk scheduler", version="0.1.0")
    app.state.scheduler = scheduler
    app.state.operator_token = operator_token
    app.include_router(router)
    return app
