"""Tickets: open, list, read, reply, change status, assign, change priority.

Every route acts as the token's user, inside that user's organization; customers only ever
see their own tickets. Each write commits once, together with its event and e-mail jobs.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, status

from insightdesk.tickets import handlers
from insightdesk.tickets.api.accounts import AUTH_ERRORS
from insightdesk.tickets.api.dependencies import Caller, Unit
from insightdesk.tickets.api.schemas import (
    MessageOut,
    Problem,
    TicketDetailOut,
    TicketOut,
    TicketPage,
)
from insightdesk.tickets.commands import (
    AddMessage,
    AssignTicket,
    ChangePriority,
    ChangeStatus,
    CreateTicket,
    TicketFilter,
)

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "No such ticket in your organization (or not yours)"}
}
CLOSED: dict[int | str, dict[str, Any]] = {
    409: {"model": Problem, "description": "The ticket's state does not allow the change"}
}

router = APIRouter(prefix="/tickets", tags=["tickets"], responses=AUTH_ERRORS)


@router.post("", status_code=status.HTTP_201_CREATED, summary="Open a ticket")
async def create_ticket(body: CreateTicket, caller: Caller, unit: Unit) -> TicketOut:
    """Customers open tickets for themselves; agents and admins give ``customer_id``.
    Publishes ``ticket.created`` (and ``ticket.message_added`` for an opening ``body``)."""
    view = await handlers.create_ticket(
        body, actor=caller, repo=unit.repo, outbox=unit.outbox, now=unit.now
    )
    await unit.commit()
    return TicketOut.of(view)


@router.get("", summary="List your organization's tickets (a customer's own only)")
async def list_tickets(
    where: Annotated[TicketFilter, Query()], caller: Caller, unit: Unit
) -> TicketPage:
    views = await handlers.list_tickets(where, actor=caller, repo=unit.repo)
    return TicketPage(
        items=[TicketOut.of(v) for v in views], limit=where.limit, offset=where.offset
    )


@router.get(
    "/{ticket_id}", summary="A ticket with its messages and participants", responses=NOT_FOUND
)
async def get_ticket(ticket_id: uuid.UUID, caller: Caller, unit: Unit) -> TicketDetailOut:
    detail = await handlers.get_ticket(ticket_id, actor=caller, repo=unit.repo)
    return TicketDetailOut.of_detail(detail)


@router.post(
    "/{ticket_id}/messages",
    status_code=status.HTTP_201_CREATED,
    summary="Reply on a ticket",
    responses={**NOT_FOUND, **CLOSED},
)
async def add_message(
    ticket_id: uuid.UUID, body: AddMessage, caller: Caller, unit: Unit
) -> MessageOut:
    """Publishes ``ticket.message_added`` (``first_response`` on the first agent/admin reply)
    and e-mails every other participant. A customer's reply reopens a pending or resolved
    ticket (``ticket.status_changed``)."""
    posted = await handlers.add_message(
        ticket_id, body, actor=caller, repo=unit.repo, outbox=unit.outbox, now=unit.now
    )
    await unit.commit()
    return MessageOut.of(posted.message)


@router.put(
    "/{ticket_id}/status", summary="Change a ticket's status", responses={**NOT_FOUND, **CLOSED}
)
async def change_status(
    ticket_id: uuid.UUID, body: ChangeStatus, caller: Caller, unit: Unit
) -> TicketOut:
    """``closed`` is final. Customers may set their tickets ``open``, ``resolved`` or
    ``closed``. Publishes ``ticket.status_changed`` (and ``ticket.closed``)."""
    view = await handlers.change_status(
        ticket_id, body, actor=caller, repo=unit.repo, outbox=unit.outbox, now=unit.now
    )
    await unit.commit()
    return TicketOut.of(view)


@router.put(
    "/{ticket_id}/assignee",
    summary="Assign a ticket to an agent or admin (staff only)",
    responses={**NOT_FOUND, **CLOSED},
)
async def assign(ticket_id: uuid.UUID, body: AssignTicket, caller: Caller, unit: Unit) -> TicketOut:
    """Publishes ``ticket.assigned`` and e-mails the new assignee (unless self-assigned)."""
    view = await handlers.assign(
        ticket_id, body, actor=caller, repo=unit.repo, outbox=unit.outbox, now=unit.now
    )
    await unit.commit()
    return TicketOut.of(view)


@router.put(
    "/{ticket_id}/priority",
    summary="Change a ticket's priority (staff only)",
    responses={**NOT_FOUND, **CLOSED},
)
async def change_priority(
    ticket_id: uuid.UUID, body: ChangePriority, caller: Caller, unit: Unit
) -> TicketOut:
    """Publishes ``ticket.priority_changed``."""
    view = await handlers.change_priority(
        ticket_id, body, actor=caller, repo=unit.repo, outbox=unit.outbox, now=unit.now
    )
    await unit.commit()
    return TicketOut.of(view)
