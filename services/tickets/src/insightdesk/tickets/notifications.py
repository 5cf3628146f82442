"""The notification policy (pure): which e-mails a domain event asks for.

It takes an event (which carries the ticket snapshot and the people involved) and returns
``SendEmail`` commands, each with the key that deduplicates it; the caller sends them in the
transaction that published the event. No I/O, no clock: everything comes from the event.

* ``ticket.message_added`` → ``ticket-new-message`` to every participant except the author;
* ``ticket.status_changed`` → ``ticket-status-change`` to the customer and the assignee,
  except whoever changed it;
* ``ticket.assigned`` → ``ticket-assigned`` to the new assignee, unless they assigned
  themselves;
* ``ticket.closed`` with reason ``auto`` → ``ticket-closed`` to the customer (a manual close
  is a status change and mailed as one);
* ``user.registered`` → ``welcome`` to the new user.

Ticket notifications are deduplicated per (ticket, recipient, type) for five minutes: the
command goes out with ``singleton_key=f"{ticket}:{recipient}:{type}"`` and
``singleton_seconds=300`` (the queue engine throttles it, race-free). Every command carries a
deterministic idempotency key, so a retried job never mails twice.

Template contexts are contracts (:data:`insightdesk.shared.contracts.TEMPLATE_CONTEXTS`): each
command's ``context`` is built by instantiating the template's model and serialising it with
:func:`~insightdesk.shared.contracts.template_context`, so it cannot drift from what the email
service validates and its templates use:

==========================  ===========================================================
``welcome``                 :class:`~insightdesk.shared.contracts.WelcomeContext`
``ticket-new-message``      :class:`~insightdesk.shared.contracts.TicketNewMessageContext`
``ticket-status-change``    :class:`~insightdesk.shared.contracts.TicketStatusChangeContext`
``ticket-assigned``         :class:`~insightdesk.shared.contracts.TicketAssignedContext`
``ticket-closed``           :class:`~insightdesk.shared.contracts.TicketClosedContext`
==========================  ===========================================================
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from insightdesk.shared.contracts import (
    Contract,
    Event,
    SendEmail,
    TicketAssigned,
    TicketAssignedContext,
    TicketClosed,
    TicketClosedContext,
    TicketMessageAdded,
    TicketNewMessageContext,
    TicketSnapshot,
    TicketStatusChangeContext,
    TicketStatusChanged,
    UserRef,
    UserRegistered,
    WelcomeContext,
    template_context,
)

DEDUPE_SECONDS = 300
"""Window in which a second notification of one type about one ticket to one person is dropped."""

WELCOME = "welcome"
NEW_MESSAGE = "ticket-new-message"
STATUS_CHANGE = "ticket-status-change"
ASSIGNED = "ticket-assigned"
CLOSED = "ticket-closed"


@dataclass(frozen=True, slots=True)
class Notification:
    """One e-mail to send, and how to deduplicate it (no key: always send)."""

    command: SendEmail
    dedupe_key: str | None = None
    dedupe_seconds: int | None = None


def notifications_for(event: Event) -> list[Notification]:
    """The e-mails ``event`` calls for (none for events that notify nobody)."""
    match event:
        case TicketMessageAdded():
            return on_message_added(event)
        case TicketStatusChanged():
            return on_status_changed(event)
        case TicketAssigned():
            return on_assigned(event)
        case TicketClosed():
            return on_closed(event)
        case UserRegistered():
            return on_user_registered(event)
        case _:
            return []


def on_message_added(event: TicketMessageAdded) -> list[Notification]:
    ticket = event.ticket
    recipients = _distinct(p for p in event.participants if p.id != event.author.id)
    return [
        _ticket_email(
            NEW_MESSAGE,
            ticket,
            recipient,
            TicketNewMessageContext(
                recipient_name=recipient.name,
                ticket_id=str(ticket.id),
                ticket_subject=ticket.subject,
                author_name=event.author.name,
                body=event.body,
            ),
            occasion=str(event.message_id),
        )
        for recipient in recipients
    ]


def on_status_changed(event: TicketStatusChanged) -> list[Notification]:
    ticket = event.ticket
    candidates = [ticket.customer, *([ticket.assignee] if ticket.assignee else [])]
    recipients = _distinct(p for p in candidates if p.id != event.changed_by.id)
    return [
        _ticket_email(
            STATUS_CHANGE,
            ticket,
            recipient,
            TicketStatusChangeContext(
                recipient_name=recipient.name,
                ticket_id=str(ticket.id),
                ticket_subject=ticket.subject,
                old_status=event.old_status.value,
                new_status=event.new_status.value,
                changed_by_name=event.changed_by.name,
            ),
            occasion=_instant(event.occurred_at),
        )
        for recipient in recipients
    ]


def on_assigned(event: TicketAssigned) -> list[Notification]:
    assignee = event.assignee
    if assignee is None or assignee.id == event.assigned_by.id:
        return []
    ticket = event.ticket
    context = TicketAssignedContext(
        recipient_name=assignee.name,
        ticket_id=str(ticket.id),
        ticket_subject=ticket.subject,
        assigned_by_name=event.assigned_by.name,
    )
    return [
        _ticket_email(ASSIGNED, ticket, assignee, context, occasion=_instant(event.occurred_at))
    ]


def on_closed(event: TicketClosed) -> list[Notification]:
    ticket = event.ticket
    if event.reason != "auto" or ticket.closed_at is None:
        return []
    resolved_days = (ticket.closed_at - (ticket.resolved_at or ticket.closed_at)).days
    context = TicketClosedContext(
        recipient_name=ticket.customer.name,
        ticket_id=str(ticket.id),
        ticket_subject=ticket.subject,
        resolved_days=resolved_days,
    )
    command = SendEmail(
        to=ticket.customer.email,
        template=CLOSED,
        context=template_context(context),
        idempotency_key=f"{CLOSED}:{ticket.id}:{ticket.customer.id}:{_instant(ticket.closed_at)}",
    )
    return [Notification(command)]


def on_user_registered(event: UserRegistered) -> list[Notification]:
    user = event.user
    command = SendEmail(
        to=user.email,
        template=WELCOME,
        context=template_context(
            WelcomeContext(
                name=user.name,
                recipient_name=user.name,
                organization_name=event.organization_name,
            )
        ),
        idempotency_key=f"{WELCOME}:{user.id}",
    )
    return [Notification(command)]


def dedupe_key(ticket: TicketSnapshot, recipient: UserRef, kind: str) -> str:
    """The throttle key of a ticket notification: one per (ticket, recipient, type)."""
    return f"{ticket.id}:{recipient.id}:{kind}"


def _ticket_email(
    template: str,
    ticket: TicketSnapshot,
    recipient: UserRef,
    context: Contract,
    *,
    occasion: str,
) -> Notification:
    command = SendEmail(
        to=recipient.email,
        template=template,
        context=template_context(context),
        idempotency_key=f"{template}:{ticket.id}:{recipient.id}:{occasion}",
    )
    return Notification(command, dedupe_key(ticket, recipient, template), DEDUPE_SECONDS)


def _instant(at: datetime) -> str:
    """An event time as it appears in idempotency keys (UTC, microseconds)."""
    return at.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")


def _distinct(people: Iterable[UserRef]) -> list[UserRef]:
    seen: set[object] = set()
    found = []
    for person in people:
        if person.id not in seen:
            seen.add(person.id)
            found.append(person)
    return found
