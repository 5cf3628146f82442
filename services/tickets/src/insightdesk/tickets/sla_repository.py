"""The database adapter of the SLA configuration and of each ticket's reported SLA targets,
inside the caller's session (organization-scoped, like :mod:`insightdesk.tickets.repository`)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from insightdesk.shared.contracts import Role, UserRef
from insightdesk.tickets.models import Organization, User
from insightdesk.tickets.repository import user_ref
from insightdesk.tickets.sla_models import BusinessCalendarRow, SlaPolicyRow, TicketSlaRow


class SlaRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # ------------------------------------------------------------------ calendars

    async def calendars(self, organization_id: uuid.UUID) -> list[BusinessCalendarRow]:
        query = (
            select(BusinessCalendarRow)
            .where(BusinessCalendarRow.organization_id == organization_id)
            .order_by(col(BusinessCalendarRow.name), col(BusinessCalendarRow.id))
        )
        return list((await self.session.exec(query)).all())

    async def calendar(
        self, organization_id: uuid.UUID, calendar_id: uuid.UUID, *, lock: bool = False
    ) -> BusinessCalendarRow | None:
        query = select(BusinessCalendarRow).where(
            BusinessCalendarRow.organization_id == organization_id,
            BusinessCalendarRow.id == calendar_id,
        )
        if lock:
            query = query.with_for_update()
        return (await self.session.exec(query)).first()

    async def policies_using(self, calendar_id: uuid.UUID) -> list[SlaPolicyRow]:
        query = select(SlaPolicyRow).where(SlaPolicyRow.calendar_id == calendar_id)
        return list((await self.session.exec(query)).all())

    # ------------------------------------------------------------------ policies

    async def policies(self, organization_id: uuid.UUID) -> list[SlaPolicyRow]:
        query = (
            select(SlaPolicyRow)
            .where(SlaPolicyRow.organization_id == organization_id)
            .order_by(col(SlaPolicyRow.position), col(SlaPolicyRow.id))
        )
        return list((await self.session.exec(query)).all())

    async def policy(
        self, organization_id: uuid.UUID, policy_id: uuid.UUID, *, lock: bool = False
    ) -> SlaPolicyRow | None:
        query = select(SlaPolicyRow).where(
            SlaPolicyRow.organization_id == organization_id, SlaPolicyRow.id == policy_id
        )
        if lock:
            query = query.with_for_update()
        return (await self.session.exec(query)).first()

    async def default_policy(self, organization_id: uuid.UUID) -> SlaPolicyRow | None:
        query = select(SlaPolicyRow).where(
            SlaPolicyRow.organization_id == organization_id, col(SlaPolicyRow.is_default)
        )
        return (await self.session.exec(query)).first()

    # ------------------------------------------------------------------ shared

    async def add(self, row: BusinessCalendarRow | SlaPolicyRow) -> None:
        self.session.add(row)
        await self.session.flush()

    async def delete(self, row: BusinessCalendarRow | SlaPolicyRow) -> None:
        await self.session.delete(row)
        await self.session.flush()

    async def flush(self) -> None:
        await self.session.flush()

    # ------------------------------------------------------------------ reported targets

    async def record_targets(self, row: TicketSlaRow) -> bool:
        """Store the ticket's targets unless a report with a higher sequence is stored (or the
        ticket is unknown); True if stored."""
        values = row.model_dump()
        statement = (
            insert(TicketSlaRow)
            .values(**values)
            .on_conflict_do_update(
                index_elements=[col(TicketSlaRow.ticket_id)],
                set_={k: v for k, v in values.items() if k != "ticket_id"},
                where=col(TicketSlaRow.sequence) < row.sequence,
            )
            .returning(col(TicketSlaRow.ticket_id))
        )
        result = await self.session.exec(statement)
        return result.first() is not None

    async def targets(self, ticket_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, TicketSlaRow]:
        if not ticket_ids:
            return {}
        query = select(TicketSlaRow).where(col(TicketSlaRow.ticket_id).in_(list(ticket_ids)))
        return {r.ticket_id: r for r in (await self.session.exec(query)).all()}

    # ------------------------------------------------------------------ people

    async def organization(self, organization_id: uuid.UUID) -> Organization | None:
        return await self.session.get(Organization, organization_id)

    async def staff(self, organization_id: uuid.UUID) -> list[UserRef]:
        query = (
            select(User)
            .where(
                User.organization_id == organization_id,
                col(User.role).in_([Role.ADMIN, Role.AGENT]),
            )
            .order_by(col(User.created_at), col(User.id))
        )
        return [user_ref(u) for u in (await self.session.exec(query)).all()]
