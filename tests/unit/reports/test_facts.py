"""Events told apart by shape (a job does not carry the event name) and turned into facts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from insightdesk.reports.facts import event_key, facts_for, parse_event
from insightdesk.reports.settings import ReportsSettings
from insightdesk.shared.contracts import (
    Event,
    OrganizationCreated,
    OrganizationSnapshot,
    OrganizationUpdated,
    Role,
    TicketAssigned,
    TicketClosed,
    TicketCreated,
    TicketMessageAdded,
    TicketPriority,
    TicketPriorityChanged,
    TicketSnapshot,
    TicketStatus,
    TicketStatusChanged,
    UserRef,
    UserRegistered,
)
from insightdesk.shared.errors import ConfigurationError

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ORG = uuid.UUID(int=5)
AGENT = UserRef(id=uuid.UUID(int=2), email="a@x.example", name="Ada", role=Role.AGENT)
CUSTOMER = UserRef(id=uuid.UUID(int=3), email="c@x.example", name="Cy", role=Role.CUSTOMER)
TICKET = TicketSnapshot(
    id=uuid.UUID(int=9),
    organization_id=ORG,
    subject="s",
    status=TicketStatus.OPEN,
    priority=TicketPriority.LOW,
    customer=CUSTOMER,
    created_at=NOW,
)
ORG_SETTINGS = OrganizationSnapshot(
    id=ORG, name="Acme", time_zone="Pacific/Auckland", locale="de", created_at=NOW
)
EVENTS: list[Event] = [
    OrganizationCreated(occurred_at=NOW, organization=ORG_SETTINGS),
    OrganizationUpdated(occurred_at=NOW, organization=ORG_SETTINGS, changed=["time_zone"]),
    UserRegistered(occurred_at=NOW, user=AGENT, organization_id=ORG, organization_name="Acme"),
    TicketCreated(occurred_at=NOW, ticket=TICKET, created_by=CUSTOMER),
    TicketMessageAdded(
        occurred_at=NOW, ticket=TICKET, message_id=uuid.UUID(int=1), author=AGENT, body="b"
    ),
    TicketStatusChanged(
        occurred_at=NOW,
        ticket=TICKET,
        old_status=TicketStatus.OPEN,
        new_status=TicketStatus.PENDING,
        changed_by=AGENT,
    ),
    TicketAssigned(occurred_at=NOW, ticket=TICKET, assignee=AGENT, assigned_by=AGENT),
    TicketPriorityChanged(
        occurred_at=NOW,
        ticket=TICKET,
        old_priority=TicketPriority.LOW,
        new_priority=TicketPriority.HIGH,
        changed_by=AGENT,
    ),
    TicketClosed(occurred_at=NOW, ticket=TICKET),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.name)
def test_every_event_is_recognised_by_its_shape(event: Event) -> None:
    parsed = parse_event(event.model_dump(mode="json"))
    assert type(parsed) is type(event)
    assert parsed == event
    change = facts_for(event)
    assert change is not None and change.name == event.name


def test_an_unknown_shape_is_none_and_a_malformed_event_an_error() -> None:
    assert parse_event({"something": "else"}) is None
    with pytest.raises(ValidationError):
        parse_event({"ticket": {"id": "not a uuid"}})


def test_the_event_key_follows_the_content() -> None:
    a, b = EVENTS[3], EVENTS[3].model_copy(update={"occurred_at": NOW + timedelta(seconds=1)})
    assert event_key(a) == event_key(TicketCreated.model_validate(a.model_dump(mode="json")))
    assert event_key(a) != event_key(b)
    assert len({event_key(e) for e in EVENTS}) == len(EVENTS)


def test_organization_events_carry_time_zone_and_locale() -> None:
    change = facts_for(EVENTS[0])
    assert change is not None and change.organization is not None
    org = change.organization
    assert (org.time_zone, org.locale, org.authoritative) == ("Pacific/Auckland", "de", True)
    seen = facts_for(EVENTS[3])
    assert seen is not None and seen.organization is not None
    assert seen.organization.authoritative is False


def test_customers_are_not_digest_recipients() -> None:
    change = facts_for(EVENTS[3])
    assert change is not None and change.users == ()
    reply = facts_for(EVENTS[4])
    assert reply is not None and [u.role for u in reply.users] == ["agent"]


def test_the_signing_key_must_be_real_outside_development() -> None:
    with pytest.raises((ConfigurationError, ValidationError)):
        ReportsSettings(environment="production")
    with pytest.raises((ConfigurationError, ValidationError)):
        ReportsSettings(environment="production", signing_key="change-me")
    assert ReportsSettings(environment="production", signing_key="k" * 40).digest_hour == 8
    assert ReportsSettings().http_port == 8005
    with pytest.raises(ValidationError):
        ReportsSettings(link_ttl_hours=200)
