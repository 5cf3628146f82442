"""The ticket use cases of the API.

Plain async functions: the request's command first, then keyword-only dependencies — the
caller (:class:`Actor`), the repository (the caller's open transaction), the :class:`Outbox`
and ``now``. Each write publishes its domain event, and the e-mails the notification policy
derives from it, through the outbox into the same transaction; the caller commits once, so the
change, its event and its e-mails exist together or not at all. Nothing here knows HTTP or the
queue transport.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from insightdesk.shared.contracts import (
    Role,
    TicketAssigned,
    TicketClosed,
    TicketCreated,
    TicketMessageAdded,
    TicketPriority,
    TicketPriorityChanged,
    TicketStatus,
    TicketStatusChanged,
    UserRef,
)
from insightdesk.tickets.commands import (
    AddMessage,
    AssignTicket,
    ChangePriority,
    ChangeStatus,
    CreateTicket,
    TicketFilter,
)
from insightdesk.tickets.errors import Forbidden, InvalidInput, NotFound
from insightdesk.tickets.models import Message, Ticket
from insightdesk.tickets.notifications import (
    FlushNotifications,
    Notification,
    digest_email,
    flush_key,
    on_ticket_opened,
)
from insightdesk.tickets.permissions import STAFF, Actor, require_staff, require_status_allowed
from insightdesk.tickets.ports import Outbox, emit
from insightdesk.tickets.repository import MessageView, TicketRepository, TicketView, user_ref
from insightdesk.tickets.status import (
    StatusChange,
    reopened_by_customer_reply,
    require_not_closed,
    transition,
)


@dataclass(frozen=True, slots=True)
class TicketDetail:
    view: TicketView
    messages: list[MessageView]
    participants: list[UserRef]


@dataclass(frozen=True, slots=True)
class MessagePosted:
    message: MessageView
    ticket: TicketView


# ---------------------------------------------------------------------- reading tickets


async def list_tickets(
    where: TicketFilter, *, actor: Actor, repo: TicketRepository
) -> list[TicketView]:
    """The organization's tickets, newest first (a customer's own only)."""
    tickets = await repo.tickets(actor.organization_id, where, customer_id=actor.visible_customer())
    return await repo.views(tickets)


async def get_ticket(ticket_id: uuid.UUID, *, actor: Actor, repo: TicketRepository) -> TicketDetail:
    ticket = await _find(ticket_id, actor=actor, repo=repo)
    return TicketDetail(
        await repo.view(ticket), await repo.messages(ticket), await repo.participants(ticket)
    )


async def _find(
    ticket_id: uuid.UUID, *, actor: Actor, repo: TicketRepository, lock: bool = False
) -> Ticket:
    ticket = await repo.ticket(
        actor.organization_id, ticket_id, customer_id=actor.visible_customer(), lock=lock
    )
    if ticket is None:
        raise NotFound(f"ticket {ticket_id} not found")
    return ticket


# ---------------------------------------------------------------------- writing tickets


async def create_ticket(
    command: CreateTicket,
    *,
    actor: Actor,
    repo: TicketRepository,
    outbox: Outbox,
    now: datetime,
) -> TicketView:
    """Open a ticket (customers for themselves, staff for a customer of the organization).

    Priority is staff's to set (as with ``change_priority``): a customer's ticket starts
    ``normal`` and a customer asking for another priority is refused.
    An opening ``body`` becomes the ticket's first message (not a reply, so never the first
    response) and is published as ``ticket.message_added`` after ``ticket.created``.
    """
    if not actor.is_staff and command.priority is not TicketPriority.NORMAL:
        raise Forbidden("only an agent or admin may set a ticket's priority")
    customer_id = await _customer_for(command, actor=actor, repo=repo)
    ticket = Ticket(
        id=uuid.uuid4(),
        organization_id=actor.organization_id,
        subject=command.subject,
        status=TicketStatus.OPEN,
        priority=command.priority,
        customer_id=customer_id,
        created_at=now,
        updated_at=now,
    )
    await repo.add_ticket(ticket)
    await repo.add_participant(ticket, customer_id, now)
    message = None
    if command.body is not None:
        message = await _post(ticket, command.body, actor=actor, repo=repo, now=now)
    view = await repo.view(ticket)
    created = TicketCreated(occurred_at=now, ticket=view.snapshot(), created_by=actor.ref)
    await emit(created, outbox=outbox)
    staff = await repo.staff(actor.organization_id) if view.assignee is None else []
    for notification in on_ticket_opened(
        created, staff=staff, body=command.body, base_url=outbox.public_base_url
    ):
        await outbox.send(notification)
    if message is not None:
        await _message_added(view, message, first_response=False, repo=repo, outbox=outbox)
    return view


async def _customer_for(
    command: CreateTicket, *, actor: Actor, repo: TicketRepository
) -> uuid.UUID:
    if not actor.is_staff:
        if command.customer_id not in {None, actor.id}:
            raise Forbidden("a customer can only open tickets for themselves")
        return actor.id
    if command.customer_id is None:
        raise InvalidInput(
            "customer_id",
            "customer_id is required when an agent or admin opens a ticket",
            "missing",
        )
    customer = await repo.user(actor.organization_id, command.customer_id)
    if customer is None:
        raise InvalidInput("customer_id", "no user with this id in your organization", "not_found")
    if customer.role != Role.CUSTOMER:
        raise InvalidInput(
            "customer_id", "the ticket's customer must be a customer", "not_customer"
        )
    return customer.id


async def add_message(
    ticket_id: uuid.UUID,
    command: AddMessage,
    *,
    actor: Actor,
    repo: TicketRepository,
    outbox: Outbox,
    now: datetime,
) -> MessagePosted:
    """Reply on a ticket. The first reply of an agent or admin is the ticket's first response;
    a customer's reply reopens a pending or resolved ticket."""
    ticket = await _find(ticket_id, actor=actor, repo=repo, lock=True)
    require_not_closed(ticket.status, "add a message")
    first_response = actor.is_staff and ticket.first_response_at is None
    if first_response:
        ticket.first_response_at = now
    message = await _post(ticket, command.body, actor=actor, repo=repo, now=now)
    reopen = None
    if actor.id == ticket.customer_id and (target := reopened_by_customer_reply(ticket.status)):
        reopen = transition(
            ticket.status,
            target,
            resolved_at=ticket.resolved_at,
            closed_at=ticket.closed_at,
            now=now,
        )
    if reopen is not None:
        _apply(ticket, reopen)
    await repo.flush()
    view = await repo.view(ticket)
    await _message_added(view, message, first_response=first_response, repo=repo, outbox=outbox)
    if reopen is not None:
        await _status_changed(view, reopen, actor=actor, repo=repo, outbox=outbox, now=now)
    return MessagePosted(message, view)


async def _post(
    ticket: Ticket, body: str, *, actor: Actor, repo: TicketRepository, now: datetime
) -> MessageView:
    message = Message(
        id=uuid.uuid4(),
        organization_id=ticket.organization_id,
        ticket_id=ticket.id,
        author_id=actor.id,
        body=body,
        created_at=now,
    )
    ticket.updated_at = now
    await repo.add_message(message)
    await repo.add_participant(ticket, actor.id, now)
    return MessageView(message, actor.ref)


async def _message_added(
    view: TicketView,
    posted: MessageView,
    *,
    first_response: bool,
    repo: TicketRepository,
    outbox: Outbox,
) -> None:
    event = TicketMessageAdded(
        occurred_at=posted.message.created_at,
        ticket=view.snapshot(),
        message_id=posted.message.id,
        author=posted.author,
        body=posted.message.body,
        first_response=first_response,
        participants=await repo.participants(view.ticket),
    )
    await emit(event, outbox=outbox)


async def change_status(
    ticket_id: uuid.UUID,
    command: ChangeStatus,
    *,
    actor: Actor,
    repo: TicketRepository,
    outbox: Outbox,
    now: datetime,
) -> TicketView:
    """Move the ticket to ``command.status`` (no-op, and no event, when it is there already)."""
    require_status_allowed(actor, command.status)
    ticket = await _find(ticket_id, actor=actor, repo=repo, lock=True)
    change = transition(
        ticket.status,
        command.status,
        resolved_at=ticket.resolved_at,
        closed_at=ticket.closed_at,
        now=now,
    )
    if change is None:
        return await repo.view(ticket)
    _apply(ticket, change)
    ticket.updated_at = now
    await repo.flush()
    view = await repo.view(ticket)
    await _status_changed(view, change, actor=actor, repo=repo, outbox=outbox, now=now)
    return view


def _apply(ticket: Ticket, change: StatusChange) -> None:
    ticket.status = change.new
    ticket.resolved_at = change.resolved_at
    ticket.closed_at = change.closed_at


async def _status_changed(
    view: TicketView,
    change: StatusChange,
    *,
    actor: Actor,
    repo: TicketRepository,
    outbox: Outbox,
    now: datetime,
) -> None:
    snapshot = view.snapshot()
    event = TicketStatusChanged(
        occurred_at=now,
        ticket=snapshot,
        old_status=change.old,
        new_status=change.new,
        changed_by=actor.ref,
        participants=await repo.participants(view.ticket),
    )
    await emit(event, outbox=outbox)
    if change.new == TicketStatus.CLOSED:
        await emit(TicketClosed(occurred_at=now, ticket=snapshot), outbox=outbox)


async def assign(
    ticket_id: uuid.UUID,
    command: AssignTicket,
    *,
    actor: Actor,
    repo: TicketRepository,
    outbox: Outbox,
    now: datetime,
) -> TicketView:
    """Give the ticket to an agent or admin of the organization (or to nobody)."""
    require_staff(actor, "assign tickets")
    ticket = await _find(ticket_id, actor=actor, repo=repo, lock=True)
    require_not_closed(ticket.status, "reassign it")
    if command.assignee_id is not None:
        assignee = await repo.user(actor.organization_id, command.assignee_id)
        if assignee is None:
            raise InvalidInput(
                "assignee_id", "no user with this id in your organization", "not_found"
            )
        if assignee.role not in STAFF:
            raise InvalidInput(
                "assignee_id", "tickets can only be assigned to an agent or admin", "not_staff"
            )
    previous = ticket.assignee_id
    if previous == command.assignee_id:
        return await repo.view(ticket)
    ticket.assignee_id = command.assignee_id
    ticket.updated_at = now
    await repo.flush()
    if previous is not None:
        await repo.drop_assignee_participant(ticket, previous)
    if command.assignee_id is not None:
        await repo.add_participant(ticket, command.assignee_id, now)
    view = await repo.view(ticket)
    event = TicketAssigned(
        occurred_at=now,
        ticket=view.snapshot(),
        assignee=view.assignee,
        previous_assignee_id=previous,
        assigned_by=actor.ref,
    )
    await emit(event, outbox=outbox)
    return view


async def change_priority(
    ticket_id: uuid.UUID,
    command: ChangePriority,
    *,
    actor: Actor,
    repo: TicketRepository,
    outbox: Outbox,
    now: datetime,
) -> TicketView:
    require_staff(actor, "change the priority")
    ticket = await _find(ticket_id, actor=actor, repo=repo, lock=True)
    require_not_closed(ticket.status, "change its priority")
    old = ticket.priority
    if old == command.priority:
        return await repo.view(ticket)
    ticket.priority = command.priority
    ticket.updated_at = now
    await repo.flush()
    view = await repo.view(ticket)
    event = TicketPriorityChanged(
        occurred_at=now,
        ticket=view.snapshot(),
        old_priority=old,
        new_priority=command.priority,
        changed_by=actor.ref,
    )
    await emit(event, outbox=outbox)
    return view


async def flush_notifications(
    command: FlushNotifications, *, repo: TicketRepository, outbox: Outbox
) -> int:
    """The window of (ticket, recipient) closed: mail every held update in ONE e-mail and drop
    them, in the caller's transaction. Returns how many updates the mail carries (0: an earlier
    flush took them already)."""
    await repo.lock_notifications(flush_key(command.ticket_id, command.recipient_id))
    rows = await repo.pending_notifications(command.ticket_id, command.recipient_id)
    if not rows:
        return 0
    found = await repo.ticket_and_user(command.ticket_id, command.recipient_id)
    await repo.drop_notifications([row.id for row in rows if row.id is not None])
    if found is None:  # deleted meanwhile (the rows would have gone with it)
        return 0
    ticket, user = found
    email = digest_email(
        ticket_id=ticket.id,
        subject=ticket.subject,
        status=ticket.status.value,
        recipient=user_ref(user),
        items=[(row.id or 0, row.item) for row in rows],
        base_url=outbox.public_base_url,
    )
    await outbox.send(Notification(email))
    return len(rows)
