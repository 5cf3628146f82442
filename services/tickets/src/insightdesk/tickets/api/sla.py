"""SLA configuration: business calendars and SLA policies of the caller's organization.

Admins create, change and delete them; agents and admins read them. Every change publishes
``business_calendar.changed`` / ``sla_policy.changed`` in the request's transaction. A bad time
zone, overlapping intervals, an unknown holiday country or subdivision, or a calendar id of
another organization is a 422 naming the field.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, status
from pydantic import BaseModel

from insightdesk.shared.contracts import BusinessCalendarConfig, SlaPolicyConfig
from insightdesk.tickets import sla_config
from insightdesk.tickets.api.accounts import AUTH_ERRORS
from insightdesk.tickets.api.dependencies import Caller, Unit
from insightdesk.tickets.api.schemas import Problem
from insightdesk.tickets.sla_repository import SlaRepository

router = APIRouter(prefix="/sla", tags=["sla"], responses=AUTH_ERRORS)

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "No such item in your organization"}
}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": Problem, "description": "In use, or a second default policy"}
}


class CalendarOut(BaseModel):
    id: uuid.UUID
    version: int
    calendar: BusinessCalendarConfig
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, view: sla_config.CalendarView) -> CalendarOut:
        return cls(
            id=view.id,
            version=view.version,
            calendar=view.config,
            created_at=view.created_at,
            updated_at=view.updated_at,
        )


class PolicyOut(BaseModel):
    id: uuid.UUID
    version: int
    policy: SlaPolicyConfig
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, view: sla_config.PolicyView) -> PolicyOut:
        return cls(
            id=view.id,
            version=view.version,
            policy=view.config,
            created_at=view.created_at,
            updated_at=view.updated_at,
        )


def _repo(unit: Unit) -> SlaRepository:
    return SlaRepository(unit.session)


@router.post("/calendars", status_code=status.HTTP_201_CREATED, summary="Create a calendar")
async def create_calendar(body: BusinessCalendarConfig, caller: Caller, unit: Unit) -> CalendarOut:
    view = await sla_config.create_calendar(
        body, actor=caller, repo=_repo(unit), outbox=unit.outbox, now=unit.now
    )
    await unit.commit()
    return CalendarOut.of(view)


@router.get("/calendars", summary="The organization's business calendars")
async def list_calendars(caller: Caller, unit: Unit) -> list[CalendarOut]:
    views = await sla_config.list_calendars(actor=caller, repo=_repo(unit))
    return [CalendarOut.of(v) for v in views]


@router.get("/calendars/{calendar_id}", summary="A business calendar", responses=NOT_FOUND)
async def get_calendar(calendar_id: uuid.UUID, caller: Caller, unit: Unit) -> CalendarOut:
    return CalendarOut.of(
        await sla_config.get_calendar(calendar_id, actor=caller, repo=_repo(unit))
    )


@router.put("/calendars/{calendar_id}", summary="Change a calendar", responses=NOT_FOUND)
async def change_calendar(
    calendar_id: uuid.UUID, body: BusinessCalendarConfig, caller: Caller, unit: Unit
) -> CalendarOut:
    """Open clocks on this calendar get new deadlines; business time already used is kept."""
    view = await sla_config.change_calendar(
        calendar_id, body, actor=caller, repo=_repo(unit), outbox=unit.outbox, now=unit.now
    )
    await unit.commit()
    return CalendarOut.of(view)


@router.delete(
    "/calendars/{calendar_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a calendar no policy uses",
    responses={**NOT_FOUND, **CONFLICT},
)
async def delete_calendar(calendar_id: uuid.UUID, caller: Caller, unit: Unit) -> None:
    await sla_config.delete_calendar(
        calendar_id, actor=caller, repo=_repo(unit), outbox=unit.outbox, now=unit.now
    )
    await unit.commit()


@router.post(
    "/policies",
    status_code=status.HTTP_201_CREATED,
    summary="Create an SLA policy",
    responses=CONFLICT,
)
async def create_policy(body: SlaPolicyConfig, caller: Caller, unit: Unit) -> PolicyOut:
    view = await sla_config.create_policy(
        body, actor=caller, repo=_repo(unit), outbox=unit.outbox, now=unit.now
    )
    await unit.commit()
    return PolicyOut.of(view)


@router.get("/policies", summary="The organization's SLA policies, in evaluation order")
async def list_policies(caller: Caller, unit: Unit) -> list[PolicyOut]:
    return [PolicyOut.of(v) for v in await sla_config.list_policies(actor=caller, repo=_repo(unit))]


@router.get("/policies/{policy_id}", summary="An SLA policy", responses=NOT_FOUND)
async def get_policy(policy_id: uuid.UUID, caller: Caller, unit: Unit) -> PolicyOut:
    return PolicyOut.of(await sla_config.get_policy(policy_id, actor=caller, repo=_repo(unit)))


@router.put(
    "/policies/{policy_id}",
    summary="Change an SLA policy",
    responses={**NOT_FOUND, **CONFLICT},
)
async def change_policy(
    policy_id: uuid.UUID, body: SlaPolicyConfig, caller: Caller, unit: Unit
) -> PolicyOut:
    """Open clocks of tickets it applies to get new deadlines; time already used is kept."""
    view = await sla_config.change_policy(
        policy_id, body, actor=caller, repo=_repo(unit), outbox=unit.outbox, now=unit.now
    )
    await unit.commit()
    return PolicyOut.of(view)


@router.delete(
    "/policies/{policy_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete an SLA policy",
    responses=NOT_FOUND,
)
async def delete_policy(policy_id: uuid.UUID, caller: Caller, unit: Unit) -> None:
    await sla_config.delete_policy(
        policy_id, actor=caller, repo=_repo(unit), outbox=unit.outbox, now=unit.now
    )
    await unit.commit()
