"""One queue carries several event types; each body is read back as the event it is."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from insightdesk.shared.contracts import (
    BusinessCalendarChanged,
    BusinessCalendarConfig,
    Event,
    SlaBreached,
    SlaPolicyChanged,
    SlaWarning,
    TicketAssigned,
    TicketPriority,
    TicketStatus,
)
from insightdesk.sla.app import config_event, queue_definitions, ticket_event
from insightdesk.tickets.sla_consumers import alert
from tests.unit.sla.harness import AGENT, CUSTOMER, Harness, TicketStory, policy

NOW = datetime(2026, 3, 2, tzinfo=UTC)


def ticket_events() -> list[Event]:
    t = TicketStory(Harness())
    return [
        t.created(),
        t.reply(CUSTOMER),
        t.status_to(TicketStatus.PENDING),
        t.priority_to(TicketPriority.HIGH),
        TicketAssigned(occurred_at=NOW, ticket=t.snapshot(), assignee=AGENT, assigned_by=AGENT),
        t.closed(),
    ]


@pytest.mark.parametrize("event", ticket_events(), ids=lambda e: e.name)
def test_ticket_events_are_told_apart(event: Event) -> None:
    read = ticket_event(event.model_dump(mode="json"))
    assert type(read) is type(event)
    assert read == event


def test_configuration_events_are_told_apart() -> None:
    org, pid = uuid.uuid4(), uuid.uuid4()
    changed = SlaPolicyChanged(
        occurred_at=NOW, organization_id=org, policy_id=pid, version=1, policy=policy()
    )
    calendar = BusinessCalendarChanged(
        occurred_at=NOW,
        organization_id=org,
        calendar_id=pid,
        version=1,
        calendar=BusinessCalendarConfig(name="c"),
    )
    assert config_event(changed.model_dump(mode="json")) == changed
    assert config_event(calendar.model_dump(mode="json")) == calendar


def test_alerts_are_told_apart() -> None:
    base = {"occurred_at": NOW, "ticket_id": uuid.uuid4(), "organization_id": uuid.uuid4()}
    warning = SlaWarning(**base, target="resolution", due_at=NOW, remaining_minutes=3.0)
    breached = SlaBreached(**base, target="resolution", due_at=NOW, escalation_level=2)
    assert alert(warning.model_dump(mode="json")) == warning
    assert alert(breached.model_dump(mode="json")) == breached


def test_every_consumed_event_has_a_queue() -> None:
    subscribed = {e for _, _, events in queue_definitions() for e in events}
    assert subscribed == {
        "ticket.created",
        "ticket.message_added",
        "ticket.status_changed",
        "ticket.assigned",
        "ticket.priority_changed",
        "ticket.closed",
        "sla_policy.changed",
        "business_calendar.changed",
    }
