"""Ticket status rules: allowed transitions and the timestamps they move."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from insightdesk.shared.contracts import TicketStatus
from insightdesk.tickets.errors import InvalidTransition
from insightdesk.tickets.status import (
    reopened_by_customer_reply,
    require_not_closed,
    transition,
)

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
EARLIER = NOW - timedelta(days=2)
S = TicketStatus


def test_resolving_stamps_resolved_at() -> None:
    change = transition(S.OPEN, S.RESOLVED, resolved_at=None, closed_at=None, now=NOW)

    assert change is not None
    assert (change.old, change.new) == (S.OPEN, S.RESOLVED)
    assert change.resolved_at == NOW
    assert change.closed_at is None


@pytest.mark.parametrize("target", [S.OPEN, S.PENDING])
def test_reopening_a_resolved_ticket_clears_resolved_at(target: TicketStatus) -> None:
    change = transition(S.RESOLVED, target, resolved_at=EARLIER, closed_at=None, now=NOW)

    assert change is not None
    assert change.new == target
    assert change.resolved_at is None


def test_closing_a_resolved_ticket_keeps_when_it_was_resolved() -> None:
    change = transition(S.RESOLVED, S.CLOSED, resolved_at=EARLIER, closed_at=None, now=NOW)

    assert change is not None
    assert (change.resolved_at, change.closed_at) == (EARLIER, NOW)


def test_closing_an_unresolved_ticket_also_counts_it_resolved() -> None:
    change = transition(S.PENDING, S.CLOSED, resolved_at=None, closed_at=None, now=NOW)

    assert change is not None
    assert (change.resolved_at, change.closed_at) == (NOW, NOW)


@pytest.mark.parametrize("target", [S.OPEN, S.PENDING, S.RESOLVED])
def test_closed_is_final(target: TicketStatus) -> None:
    with pytest.raises(InvalidTransition, match="closed"):
        transition(S.CLOSED, target, resolved_at=EARLIER, closed_at=EARLIER, now=NOW)


@pytest.mark.parametrize("status", list(TicketStatus))
def test_setting_the_current_status_changes_nothing(status: TicketStatus) -> None:
    assert transition(status, status, resolved_at=None, closed_at=None, now=NOW) is None


def test_moving_between_open_and_pending_leaves_the_timestamps_alone() -> None:
    change = transition(S.OPEN, S.PENDING, resolved_at=None, closed_at=None, now=NOW)

    assert change is not None
    assert (change.resolved_at, change.closed_at) == (None, None)


def test_a_customer_reply_reopens_pending_and_resolved_tickets_only() -> None:
    assert reopened_by_customer_reply(S.PENDING) == S.OPEN
    assert reopened_by_customer_reply(S.RESOLVED) == S.OPEN
    assert reopened_by_customer_reply(S.OPEN) is None
    assert reopened_by_customer_reply(S.CLOSED) is None


def test_a_closed_ticket_refuses_other_changes_too() -> None:
    require_not_closed(S.RESOLVED, "add a message")
    with pytest.raises(InvalidTransition, match="cannot add a message"):
        require_not_closed(S.CLOSED, "add a message")
