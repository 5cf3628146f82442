"""The database adapter: every read and write of the ``tickets`` schema, always scoped to one
organization, inside the caller's session (one transaction per request, committed by the caller).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, exists, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from insightdesk.shared.contracts import Role, TicketSnapshot, UserRef
from insightdesk.tickets.commands import TicketFilter
from insightdesk.tickets.errors import Conflict
from insightdesk.tickets.models import (
    Message,
    Organization,
    Participant,
    PendingNotification,
    Ticket,
    User,
)
from insightdesk.tickets.sla_models import TicketSlaRow

EMAIL_PER_ORG = "users_email_per_org"


LOCK_KEY = text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")


async def lock_key(session: AsyncSession, key: str) -> None:
    """A transaction-scoped advisory lock on ``key`` (released at commit or rollback)."""
    connection = await session.connection()  # the session's own transaction
    await connection.execute(LOCK_KEY, {"key": key})


def user_ref(user: User) -> UserRef:
    return UserRef(id=user.id, email=user.email, name=user.name, role=user.role)


@dataclass(frozen=True, slots=True)
class TicketView:
    """A ticket with the people it references, as events and responses need it, and its SLA
    targets as the SLA service last reported them (``sla.clock_changed``)."""

    ticket: Ticket
    customer: UserRef
    assignee: UserRef | None
    sla: TicketSlaRow | None = None

    def snapshot(self) -> TicketSnapshot:
        t = self.ticket
        return TicketSnapshot(
            id=t.id,
            organization_id=t.organization_id,
            subject=t.subject,
            status=t.status,
            priority=t.priority,
            customer=self.customer,
            assignee=self.assignee,
            created_at=t.created_at,
            first_response_at=t.first_response_at,
            resolved_at=t.resolved_at,
            closed_at=t.closed_at,
        )


@dataclass(frozen=True, slots=True)
class MessageView:
    message: Message
    author: UserRef


class TicketRepository:
    """Reads and writes through one :class:`AsyncSession`; never commits."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # ------------------------------------------------------------------ organizations, users

    async def add_organization(self, organization: Organization) -> None:
        self.session.add(organization)
        await self.session.flush()

    async def organization(
        self, organization_id: uuid.UUID, *, lock: bool = False
    ) -> Organization | None:
        return await self.session.get(Organization, organization_id, with_for_update=lock)

    async def add_user(self, user: User) -> None:
        """Insert ``user``; an e-mail already used in the organization is a :class:`Conflict`
        (the unique constraint decides, so two racing registrations cannot both win)."""
        self.session.add(user)
        try:
            await self.session.flush()
        except IntegrityError as exc:
            if _constraint(exc) == EMAIL_PER_ORG:
                raise Conflict(
                    f"a user with e-mail {user.email} already exists in this organization"
                ) from exc
            raise

    async def user_by_token_hash(self, digest: str) -> User | None:
        result = await self.session.exec(select(User).where(User.api_token_hash == digest))
        return result.first()

    async def user(self, organization_id: uuid.UUID, user_id: uuid.UUID) -> User | None:
        result = await self.session.exec(
            select(User).where(User.organization_id == organization_id, User.id == user_id)
        )
        return result.first()

    async def staff(self, organization_id: uuid.UUID) -> list[UserRef]:
        """The organization's agents and admins."""
        result = await self.session.exec(
            select(User)
            .where(
                User.organization_id == organization_id,
                col(User.role).in_([Role.AGENT, Role.ADMIN]),
            )
            .order_by(col(User.created_at))
        )
        return [user_ref(u) for u in result.all()]

    # ------------------------------------------------------------------ held notifications

    async def lock_notifications(self, key: str) -> None:
        await lock_key(self.session, key)

    async def pending_notifications(
        self, ticket_id: uuid.UUID, recipient_id: uuid.UUID
    ) -> list[PendingNotification]:
        result = await self.session.exec(
            select(PendingNotification)
            .where(
                PendingNotification.ticket_id == ticket_id,
                PendingNotification.recipient_id == recipient_id,
            )
            .order_by(col(PendingNotification.id))
        )
        return list(result.all())

    async def drop_notifications(self, ids: Sequence[int]) -> None:
        connection = await self.session.connection()
        await connection.execute(
            delete(PendingNotification).where(col(PendingNotification.id).in_(ids))
        )

    async def ticket_and_user(
        self, ticket_id: uuid.UUID, user_id: uuid.UUID
    ) -> tuple[Ticket, User] | None:
        """A ticket and a user of its organization, by id alone (for the flush job)."""
        result = await self.session.exec(
            select(Ticket, User).where(
                Ticket.id == ticket_id,
                User.id == user_id,
                User.organization_id == Ticket.organization_id,
            )
        )
        row = result.first()
        return None if row is None else (row[0], row[1])

    # ------------------------------------------------------------------ tickets

    async def add_ticket(self, ticket: Ticket) -> None:
        self.session.add(ticket)
        await self.session.flush()

    async def ticket(
        self,
        organization_id: uuid.UUID,
        ticket_id: uuid.UUID,
        *,
        customer_id: uuid.UUID | None = None,
        lock: bool = False,
    ) -> Ticket | None:
        """The ticket if it belongs to the organization (and to ``customer_id`` when given).

        ``lock`` takes the row lock, so concurrent changes of one ticket run one after the other
        (e.g. two replies cannot both be the first response).
        """
        query = select(Ticket).where(
            Ticket.organization_id == organization_id, Ticket.id == ticket_id
        )
        if customer_id is not None:
            query = query.where(Ticket.customer_id == customer_id)
        if lock:
            query = query.with_for_update()
        return (await self.session.exec(query)).first()

    async def tickets(
        self, organization_id: uuid.UUID, where: TicketFilter, *, customer_id: uuid.UUID | None
    ) -> list[Ticket]:
        query = select(Ticket).where(Ticket.organization_id == organization_id)
        if not where.archived:
            query = query.where(col(Ticket.archived_at).is_(None))
        if customer_id is not None:
            query = query.where(Ticket.customer_id == customer_id)
        if where.status is not None:
            query = query.where(Ticket.status == where.status)
        if where.assignee_id is not None:
            query = query.where(Ticket.assignee_id == where.assignee_id)
        if where.sla is not None:
            flag = TicketSlaRow.breached if where.sla == "breached" else TicketSlaRow.at_risk
            query = query.where(exists().where(col(TicketSlaRow.ticket_id) == Ticket.id, col(flag)))
        query = (
            query.order_by(col(Ticket.created_at).desc(), col(Ticket.id).desc())
            .limit(where.limit)
            .offset(where.offset)
        )
        return list((await self.session.exec(query)).all())

    async def view(self, ticket: Ticket) -> TicketView:
        return (await self.views([ticket]))[0]

    async def views(self, tickets: Sequence[Ticket]) -> list[TicketView]:
        """Tickets with their customer and assignee, in one query for all of them."""
        if not tickets:
            return []
        wanted = {t.customer_id for t in tickets} | {
            t.assignee_id for t in tickets if t.assignee_id is not None
        }
        result = await self.session.exec(
            select(User).where(
                User.organization_id == tickets[0].organization_id, col(User.id).in_(wanted)
            )
        )
        people = {u.id: user_ref(u) for u in result.all()}
        sla_rows = await self.session.exec(
            select(TicketSlaRow).where(col(TicketSlaRow.ticket_id).in_([t.id for t in tickets]))
        )
        sla = {r.ticket_id: r for r in sla_rows.all()}
        return [
            TicketView(
                t,
                people[t.customer_id],
                people[t.assignee_id] if t.assignee_id is not None else None,
                sla.get(t.id),
            )
            for t in tickets
        ]

    async def flush(self) -> None:
        await self.session.flush()

    # ------------------------------------------------------------------ messages, participants

    async def add_message(self, message: Message) -> None:
        self.session.add(message)
        await self.session.flush()

    async def messages(self, ticket: Ticket) -> list[MessageView]:
        result = await self.session.exec(
            select(Message, User)
            .join(User, col(User.id) == Message.author_id)
            .where(Message.ticket_id == ticket.id)
            .order_by(col(Message.created_at), col(Message.id))
        )
        return [MessageView(m, user_ref(u)) for m, u in result.all()]

    async def add_participant(self, ticket: Ticket, user_id: uuid.UUID, now: datetime) -> None:
        """Make ``user_id`` a participant of ``ticket`` (once; a second call changes nothing)."""
        statement = (
            insert(Participant)
            .values(
                ticket_id=ticket.id,
                user_id=user_id,
                organization_id=ticket.organization_id,
                added_at=now,
            )
            .on_conflict_do_nothing()
        )
        await self.session.exec(statement)

    async def drop_assignee_participant(self, ticket: Ticket, user_id: uuid.UUID) -> None:
        """A former assignee stops being a participant, unless they are the customer or wrote
        a message on the ticket (participants: customer, assignee, message authors)."""
        if user_id == ticket.customer_id:
            return
        wrote = exists().where(
            col(Message.ticket_id) == ticket.id, col(Message.author_id) == user_id
        )
        statement = delete(Participant).where(
            col(Participant.ticket_id) == ticket.id,
            col(Participant.user_id) == user_id,
            ~wrote,
        )
        await self.session.exec(statement)

    async def participants(self, ticket: Ticket) -> list[UserRef]:
        result = await self.session.exec(
            select(User)
            .join(Participant, col(Participant.user_id) == User.id)
            .where(Participant.ticket_id == ticket.id)
            .order_by(col(Participant.added_at), col(User.id))
        )
        return [user_ref(u) for u in result.all()]


def _constraint(exc: IntegrityError) -> str | None:
    diag = getattr(exc.orig, "diag", None)
    name = getattr(diag, "constraint_name", None)
    return name if isinstance(name, str) else None
