"""SLA configuration use cases: business calendars and SLA policies of an organization.

Admins create, change and delete them (everyone on staff may read them). Each change publishes
``business_calendar.changed`` / ``sla_policy.changed`` through the outbox in the request's
transaction, with a version that grows per change, so the SLA service's copy converges however
its deliveries are ordered. Validation that needs no data is the contracts' (zone, intervals,
escalation levels); here: the holiday region exists, the calendar belongs to the organization,
one default policy per organization, a calendar in use cannot be deleted.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import holidays

from insightdesk.shared.contracts import (
    BusinessCalendarChanged,
    BusinessCalendarConfig,
    SlaPolicyChanged,
    SlaPolicyConfig,
)
from insightdesk.tickets.errors import Conflict, InvalidInput, NotFound
from insightdesk.tickets.permissions import Actor, require_admin, require_staff
from insightdesk.tickets.ports import Outbox
from insightdesk.tickets.sla_models import BusinessCalendarRow, SlaPolicyRow
from insightdesk.tickets.sla_repository import SlaRepository


@dataclass(frozen=True, slots=True)
class CalendarView:
    id: uuid.UUID
    version: int
    config: BusinessCalendarConfig
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: BusinessCalendarRow) -> CalendarView:
        return cls(
            row.id,
            row.version,
            BusinessCalendarConfig.model_validate(row.config),
            row.created_at,
            row.updated_at,
        )


@dataclass(frozen=True, slots=True)
class PolicyView:
    id: uuid.UUID
    version: int
    config: SlaPolicyConfig
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: SlaPolicyRow) -> PolicyView:
        return cls(
            row.id,
            row.version,
            SlaPolicyConfig.model_validate(row.config),
            row.created_at,
            row.updated_at,
        )


def check_holiday_region(config: BusinessCalendarConfig) -> None:
    """422 naming the field for a country or subdivision the ``holidays`` package lacks."""
    country, subdivision = config.holiday_country, config.holiday_subdivision
    if country is None:
        return
    if country.upper() not in holidays.list_supported_countries():
        raise InvalidInput("holiday_country", f"no public holidays known for {country!r}")
    if subdivision is not None:
        try:
            holidays.country_holidays(country.upper(), subdiv=subdivision)
        except NotImplementedError as exc:
            raise InvalidInput(
                "holiday_subdivision", f"{country} has no subdivision {subdivision!r}"
            ) from exc


# ---------------------------------------------------------------------- calendars


async def list_calendars(*, actor: Actor, repo: SlaRepository) -> list[CalendarView]:
    require_staff(actor, "read business calendars")
    return [CalendarView.of(r) for r in await repo.calendars(actor.organization_id)]


async def get_calendar(
    calendar_id: uuid.UUID, *, actor: Actor, repo: SlaRepository
) -> CalendarView:
    require_staff(actor, "read business calendars")
    return CalendarView.of(await _calendar(calendar_id, actor=actor, repo=repo))


async def _calendar(
    calendar_id: uuid.UUID, *, actor: Actor, repo: SlaRepository, lock: bool = False
) -> BusinessCalendarRow:
    row = await repo.calendar(actor.organization_id, calendar_id, lock=lock)
    if row is None:
        raise NotFound(f"business calendar {calendar_id} not found")
    return row


async def create_calendar(
    config: BusinessCalendarConfig,
    *,
    actor: Actor,
    repo: SlaRepository,
    outbox: Outbox,
    now: datetime,
) -> CalendarView:
    require_admin(actor, "create business calendars")
    check_holiday_region(config)
    row = BusinessCalendarRow(
        id=uuid.uuid4(),
        organization_id=actor.organization_id,
        name=config.name,
        config=config.model_dump(mode="json"),
        version=1,
        created_at=now,
        updated_at=now,
    )
    await repo.add(row)
    await _calendar_changed(row, config, outbox=outbox, now=now)
    return CalendarView.of(row)


async def change_calendar(
    calendar_id: uuid.UUID,
    config: BusinessCalendarConfig,
    *,
    actor: Actor,
    repo: SlaRepository,
    outbox: Outbox,
    now: datetime,
) -> CalendarView:
    require_admin(actor, "change business calendars")
    check_holiday_region(config)
    row = await _calendar(calendar_id, actor=actor, repo=repo, lock=True)
    row.name, row.config = config.name, config.model_dump(mode="json")
    row.version += 1
    row.updated_at = now
    await repo.flush()
    await _calendar_changed(row, config, outbox=outbox, now=now)
    return CalendarView.of(row)


async def delete_calendar(
    calendar_id: uuid.UUID, *, actor: Actor, repo: SlaRepository, outbox: Outbox, now: datetime
) -> None:
    require_admin(actor, "delete business calendars")
    row = await _calendar(calendar_id, actor=actor, repo=repo, lock=True)
    users = await repo.policies_using(row.id)
    if users:
        names = ", ".join(sorted(p.name for p in users))
        raise Conflict(f"the calendar is used by SLA policies: {names}")
    version = row.version + 1
    await repo.delete(row)
    await outbox.publish(
        BusinessCalendarChanged(
            occurred_at=now,
            organization_id=row.organization_id,
            calendar_id=row.id,
            version=version,
            calendar=None,
        )
    )


async def _calendar_changed(
    row: BusinessCalendarRow, config: BusinessCalendarConfig, *, outbox: Outbox, now: datetime
) -> None:
    await outbox.publish(
        BusinessCalendarChanged(
            occurred_at=now,
            organization_id=row.organization_id,
            calendar_id=row.id,
            version=row.version,
            calendar=config,
        )
    )


# ---------------------------------------------------------------------- policies


async def list_policies(*, actor: Actor, repo: SlaRepository) -> list[PolicyView]:
    require_staff(actor, "read SLA policies")
    return [PolicyView.of(r) for r in await repo.policies(actor.organization_id)]


async def get_policy(policy_id: uuid.UUID, *, actor: Actor, repo: SlaRepository) -> PolicyView:
    require_staff(actor, "read SLA policies")
    return PolicyView.of(await _policy(policy_id, actor=actor, repo=repo))


async def _policy(
    policy_id: uuid.UUID, *, actor: Actor, repo: SlaRepository, lock: bool = False
) -> SlaPolicyRow:
    row = await repo.policy(actor.organization_id, policy_id, lock=lock)
    if row is None:
        raise NotFound(f"SLA policy {policy_id} not found")
    return row


async def _check_policy(
    config: SlaPolicyConfig, *, actor: Actor, repo: SlaRepository, policy_id: uuid.UUID | None
) -> None:
    if config.calendar_id is not None and (
        await repo.calendar(actor.organization_id, config.calendar_id) is None
    ):
        raise InvalidInput("calendar_id", "no business calendar with this id", "not_found")
    if config.is_default:
        current = await repo.default_policy(actor.organization_id)
        if current is not None and current.id != policy_id:
            raise Conflict(f"the organization's default policy is already {current.name!r}")


async def create_policy(
    config: SlaPolicyConfig, *, actor: Actor, repo: SlaRepository, outbox: Outbox, now: datetime
) -> PolicyView:
    require_admin(actor, "create SLA policies")
    await _check_policy(config, actor=actor, repo=repo, policy_id=None)
    row = SlaPolicyRow(
        id=uuid.uuid4(),
        organization_id=actor.organization_id,
        name=config.name,
        position=config.position,
        is_default=config.is_default,
        calendar_id=config.calendar_id,
        config=config.model_dump(mode="json"),
        version=1,
        created_at=now,
        updated_at=now,
    )
    await repo.add(row)
    await _policy_changed(row, config, outbox=outbox, now=now)
    return PolicyView.of(row)


async def change_policy(
    policy_id: uuid.UUID,
    config: SlaPolicyConfig,
    *,
    actor: Actor,
    repo: SlaRepository,
    outbox: Outbox,
    now: datetime,
) -> PolicyView:
    require_admin(actor, "change SLA policies")
    row = await _policy(policy_id, actor=actor, repo=repo, lock=True)
    await _check_policy(config, actor=actor, repo=repo, policy_id=row.id)
    row.name, row.position, row.is_default = config.name, config.position, config.is_default
    row.calendar_id, row.config = config.calendar_id, config.model_dump(mode="json")
    row.version += 1
    row.updated_at = now
    await repo.flush()
    await _policy_changed(row, config, outbox=outbox, now=now)
    return PolicyView.of(row)


async def delete_policy(
    policy_id: uuid.UUID, *, actor: Actor, repo: SlaRepository, outbox: Outbox, now: datetime
) -> None:
    require_admin(actor, "delete SLA policies")
    row = await _policy(policy_id, actor=actor, repo=repo, lock=True)
    version = row.version + 1
    await repo.delete(row)
    await outbox.publish(
        SlaPolicyChanged(
            occurred_at=now,
            organization_id=row.organization_id,
            policy_id=row.id,
            version=version,
            policy=None,
        )
    )


async def _policy_changed(
    row: SlaPolicyRow, config: SlaPolicyConfig, *, outbox: Outbox, now: datetime
) -> None:
    await outbox.publish(
        SlaPolicyChanged(
            occurred_at=now,
            organization_id=row.organization_id,
            policy_id=row.id,
            version=row.version,
            policy=config,
        )
    )
