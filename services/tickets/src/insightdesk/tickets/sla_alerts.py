"""Who is mailed about an SLA warning or breach, and with what (pure).

``sla.warning`` → ``sla-warning``; ``sla.breached`` → ``sla-breached`` (the breach itself is
escalation level 0; the policy's escalation levels 1-4 follow it). The event names who is
notified: ``assignee`` (the assignee, or every agent of the organization when the ticket is
unassigned), ``agents``, ``admins``. Every command's idempotency key names the ticket, target,
cycle, deadline version, level and recipient, so a level is mailed once per deadline version
however often the event is delivered.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from insightdesk.shared.contracts import (
    Role,
    SendEmail,
    SlaBreached,
    SlaBreachedContext,
    SlaWarning,
    SlaWarningContext,
    TicketSnapshot,
    UserRef,
    template_context,
)
from insightdesk.tickets.notifications import Notification

SLA_WARNING = "sla-warning"
SLA_BREACHED = "sla-breached"
WARNING_NOTIFIES = ("assignee", "admins")


def recipients(
    notify: Iterable[str], *, assignee: UserRef | None, staff: Sequence[UserRef]
) -> list[UserRef]:
    """The people ``notify`` names, each once, in a stable order."""
    chosen: list[UserRef] = []
    for group in notify:
        if group == "assignee":
            people = (
                [assignee] if assignee is not None else [p for p in staff if p.role == Role.AGENT]
            )
        elif group == "agents":
            people = [p for p in staff if p.role == Role.AGENT]
        elif group == "admins":
            people = [p for p in staff if p.role == Role.ADMIN]
        else:
            people = []
        chosen += [p for p in people if all(p.id != c.id for c in chosen)]
    return chosen


def sla_notifications(
    event: SlaWarning | SlaBreached,
    *,
    ticket: TicketSnapshot,
    staff: Sequence[UserRef],
    locale: str = "en",
) -> list[Notification]:
    """The mails an SLA event asks for (``ticket`` is the ticket as tickets knows it now)."""
    notify: Sequence[str]
    if isinstance(event, SlaWarning):
        template, notify, level = SLA_WARNING, WARNING_NOTIFIES, 0
    else:
        template, notify, level = SLA_BREACHED, event.notify, event.escalation_level
    people = recipients(notify, assignee=ticket.assignee, staff=staff)
    occasion = f"{event.ticket_id}:{event.target}:{event.cycle}:{event.deadline_version}:{level}"
    notifications = []
    for person in people:
        context = (
            SlaWarningContext(
                recipient_name=person.name,
                ticket_id=str(ticket.id),
                ticket_subject=ticket.subject,
                target=event.target,
                due_at=event.due_at.isoformat(),
                remaining_minutes=(
                    str(round(event.remaining_minutes))
                    if event.remaining_minutes is not None
                    else None
                ),
            )
            if isinstance(event, SlaWarning)
            else SlaBreachedContext(
                recipient_name=person.name,
                ticket_id=str(ticket.id),
                ticket_subject=ticket.subject,
                target=event.target,
                due_at=event.due_at.isoformat(),
                escalation_level=str(level) if level else None,
            )
        )
        command = SendEmail(
            to=person.email,
            template=template,
            context=template_context(context),
            idempotency_key=f"{template}:{occasion}:{person.id}",
            locale=locale,
        )
        notifications.append(Notification(command))
    return notifications
