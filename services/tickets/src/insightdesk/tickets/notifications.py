"""The notification policy (pure): which e-mails a domain event asks for, and how ticket
updates are folded into one mail per recipient.

* ``user.registered`` → ``welcome`` to the new user, at once;
* ``ticket.created`` → ``ticket-opened`` at once: a confirmation to the customer (their
  receipt, whoever opened it) and, while nobody is assigned, a notice to every agent and admin
  of the organization except the opener (:func:`on_ticket_opened`);
* ``ticket.message_added`` → an update for every participant except the author;
* ``ticket.status_changed`` → an update for the customer and the assignee, except whoever
  changed it;
* ``ticket.assigned`` → an update for the new assignee, unless they assigned themselves.

Updates are not mailed one by one. Each becomes a :class:`PendingUpdate` (a row of
``tickets.pending_notifications``, written in the transaction of the change) and the first
pending update of a (ticket, recipient) schedules a :class:`FlushNotifications` job exactly
``window`` seconds later (default 300: the README's five minutes). That job folds every
pending update of the pair into ONE ``ticket-update`` mail — every message in order, every
status change (so the latest status is the one shown) — and deletes them in the same
transaction, so nothing is dropped and nothing is mailed twice (:func:`digest_email`; its
idempotency key names the first and last update it carries). An update arriving while a flush
runs waits for the next window. Mails link to the ticket (``ticket_url``). The flush jobs run
in the tickets worker process (:mod:`insightdesk.tickets.subscribers`).

``ticket.closed`` with reason ``auto`` → ``ticket-closed`` to the customer at once (a manual
close is a status change and folded in as one).

Template contexts are contracts (:data:`insightdesk.shared.contracts.TEMPLATE_CONTEXTS`),
built by instantiating the template's model, so they cannot drift from what the email service
validates and its templates use.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from insightdesk.shared.contracts import (
    Command,
    Event,
    SendEmail,
    TicketAssigned,
    TicketClosed,
    TicketClosedContext,
    TicketCreated,
    TicketMessageAdded,
    TicketOpenedContext,
    TicketSnapshot,
    TicketStatusChanged,
    TicketUpdateContext,
    TicketUpdateItem,
    UserRef,
    UserRegistered,
    WelcomeContext,
    template_context,
)

WINDOW_SECONDS = 300
"""How long updates to one recipient about one ticket are collected before one mail goes out."""

WELCOME = "welcome"
UPDATE = "ticket-update"
OPENED = "ticket-opened"
FLUSH_QUEUE = "ticket-notifications"
CLOSED = "ticket-closed"


@dataclass(frozen=True, slots=True)
class Notification:
    """One e-mail to send now."""

    command: SendEmail


@dataclass(frozen=True, slots=True)
class PendingUpdate:
    """An update a recipient should hear about, held until their window on the ticket closes."""

    ticket: TicketSnapshot
    recipient: UserRef
    item: TicketUpdateItem
    at: datetime

    @property
    def flush_key(self) -> str:
        return flush_key(self.ticket.id, self.recipient.id)


class FlushNotifications(Command):
    """Mail ``recipient_id`` everything pending about ``ticket_id`` (the window closed)."""

    queue: ClassVar[str] = FLUSH_QUEUE
    ticket_id: uuid.UUID
    recipient_id: uuid.UUID


Planned = Notification | PendingUpdate


def flush_key(ticket_id: uuid.UUID, recipient_id: uuid.UUID) -> str:
    """The singleton key of a (ticket, recipient)'s flush job (one queued at a time)."""
    return f"notify:{ticket_id}:{recipient_id}"


def ticket_url(base_url: str | None, ticket_id: uuid.UUID) -> str | None:
    return None if not base_url else f"{base_url.rstrip('/')}/tickets/{ticket_id}"


def notifications_for(event: Event) -> list[Planned]:
    """The e-mails and held updates ``event`` calls for (none for events that notify nobody);
    ``ticket.created`` needs the organization's staff: see :func:`on_ticket_opened`."""
    match event:
        case TicketMessageAdded():
            return list(on_message_added(event))
        case TicketStatusChanged():
            return list(on_status_changed(event))
        case TicketAssigned():
            return list(on_assigned(event))
        case TicketClosed():
            return list(on_closed(event))
        case UserRegistered():
            return list(on_user_registered(event))
        case _:
            return []


def on_message_added(event: TicketMessageAdded) -> list[PendingUpdate]:
    item = TicketUpdateItem(
        kind="message", at=_iso(event.occurred_at), by_name=event.author.name, body=event.body
    )
    recipients = _distinct(p for p in event.participants if p.id != event.author.id)
    return [PendingUpdate(event.ticket, r, item, event.occurred_at) for r in recipients]


def on_status_changed(event: TicketStatusChanged) -> list[PendingUpdate]:
    ticket = event.ticket
    item = TicketUpdateItem(
        kind="status",
        at=_iso(event.occurred_at),
        by_name=event.changed_by.name,
        old_status=event.old_status.value,
        new_status=event.new_status.value,
    )
    candidates = [ticket.customer, *([ticket.assignee] if ticket.assignee else [])]
    recipients = _distinct(p for p in candidates if p.id != event.changed_by.id)
    return [PendingUpdate(ticket, r, item, event.occurred_at) for r in recipients]


def on_assigned(event: TicketAssigned) -> list[PendingUpdate]:
    assignee = event.assignee
    if assignee is None or assignee.id == event.assigned_by.id:
        return []
    item = TicketUpdateItem(
        kind="assigned", at=_iso(event.occurred_at), by_name=event.assigned_by.name
    )
    return [PendingUpdate(event.ticket, assignee, item, event.occurred_at)]


def on_ticket_opened(
    event: TicketCreated,
    *,
    staff: Sequence[UserRef],
    body: str | None = None,
    base_url: str | None = None,
) -> list[Notification]:
    """The customer's confirmation and, while unassigned, a notice to every agent and admin of
    the organization (``staff``) except whoever opened it."""
    ticket = event.ticket
    recipients = [(ticket.customer, True)]
    if ticket.assignee is None:
        recipients += [(p, False) for p in staff if p.id != event.created_by.id]
    found = []
    for person, for_customer in recipients:
        context = TicketOpenedContext(
            recipient_name=person.name,
            ticket_id=str(ticket.id),
            ticket_subject=ticket.subject,
            customer_name=ticket.customer.name,
            opened_by_name=event.created_by.name,
            ticket_priority=ticket.priority.value,
            for_customer=for_customer,
            body=body,
            ticket_url=ticket_url(base_url, ticket.id),
        )
        command = SendEmail(
            to=person.email,
            template=OPENED,
            context=template_context(context),
            idempotency_key=f"{OPENED}:{ticket.id}:{person.id}",
        )
        found.append(Notification(command))
    return found


def digest_email(
    *,
    ticket_id: uuid.UUID,
    subject: str,
    status: str,
    recipient: UserRef,
    items: Sequence[tuple[int, dict[str, Any]]],
    base_url: str | None = None,
) -> SendEmail:
    """ONE mail with every held update (``(row id, item)`` in order) for ``recipient``; the
    idempotency key names the rows it carries, so a retried flush never mails twice."""
    context = TicketUpdateContext(
        recipient_name=recipient.name,
        ticket_id=str(ticket_id),
        ticket_subject=subject,
        status=status,
        updates=[TicketUpdateItem.model_validate(item) for _, item in items],
        ticket_url=ticket_url(base_url, ticket_id),
    )
    first, last = items[0][0], items[-1][0]
    return SendEmail(
        to=recipient.email,
        template=UPDATE,
        context=template_context(context),
        idempotency_key=f"{UPDATE}:{ticket_id}:{recipient.id}:{first}-{last}",
    )


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


def _instant(at: datetime) -> str:
    """An event time as it appears in idempotency keys (UTC, microseconds)."""
    return at.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")


def _iso(at: datetime) -> str:
    """An event time as shown in a mail (UTC, to the minute)."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _distinct(people: Iterable[UserRef]) -> list[UserRef]:
    seen: set[object] = set()
    found = []
    for person in people:
        if person.id not in seen:
            seen.add(person.id)
            found.append(person)
    return found
