"""Ticket status rules (pure): which transitions are allowed and which timestamps they move.

::

    open ⇄ pending      open/pending → resolved → (reopen) open/pending
    any but closed → closed (final)

* becoming ``resolved`` stamps ``resolved_at``; reopening (resolved → open/pending) clears it;
* becoming ``closed`` stamps ``closed_at`` and, when the ticket was never resolved, also
  ``resolved_at`` (a closed ticket counts as resolved for resolution-time reporting);
* ``closed`` is final: nothing leaves it;
* a customer's reply to a ``pending`` or ``resolved`` ticket reopens it (the ball is back in the
  agents' court).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from insightdesk.shared.contracts import TicketStatus
from insightdesk.tickets.errors import InvalidTransition

ALLOWED: dict[TicketStatus, frozenset[TicketStatus]] = {
    TicketStatus.OPEN: frozenset(
        {TicketStatus.PENDING, TicketStatus.RESOLVED, TicketStatus.CLOSED}
    ),
    TicketStatus.PENDING: frozenset(
        {TicketStatus.OPEN, TicketStatus.RESOLVED, TicketStatus.CLOSED}
    ),
    TicketStatus.RESOLVED: frozenset(
        {TicketStatus.OPEN, TicketStatus.PENDING, TicketStatus.CLOSED}
    ),
    TicketStatus.CLOSED: frozenset(),
}


@dataclass(frozen=True, slots=True)
class StatusChange:
    """The outcome of a transition: the new status and the ticket's new timestamps."""

    old: TicketStatus
    new: TicketStatus
    resolved_at: datetime | None
    closed_at: datetime | None


def transition(
    current: TicketStatus,
    target: TicketStatus,
    *,
    resolved_at: datetime | None,
    closed_at: datetime | None,
    now: datetime,
) -> StatusChange | None:
    """The change from ``current`` to ``target`` at ``now``; None when there is nothing to change.

    Raises :class:`InvalidTransition` when the rules forbid it.
    """
    if target == current:
        return None
    if target not in ALLOWED[current]:
        if current == TicketStatus.CLOSED:
            raise InvalidTransition("the ticket is closed; a closed ticket cannot change")
        raise InvalidTransition(f"a ticket cannot go from {current.value} to {target.value}")
    if target == TicketStatus.RESOLVED:
        return StatusChange(current, target, now, closed_at)
    if target == TicketStatus.CLOSED:
        return StatusChange(current, target, resolved_at or now, now)
    # open or pending: leaving resolved reopens the ticket
    return StatusChange(current, target, None, closed_at)


def reopened_by_customer_reply(current: TicketStatus) -> TicketStatus | None:
    """The status a customer's reply moves the ticket to, if any."""
    if current in {TicketStatus.PENDING, TicketStatus.RESOLVED}:
        return TicketStatus.OPEN
    return None


def require_not_closed(current: TicketStatus, action: str) -> None:
    """A closed ticket is final: no message, assignment or priority change either."""
    if current == TicketStatus.CLOSED:
        raise InvalidTransition(f"the ticket is closed; cannot {action}")
