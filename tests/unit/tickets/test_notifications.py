"""The notification policy: who gets which e-mail for which event, with which keys."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from insightdesk.shared.contracts import (
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
from insightdesk.tickets.notifications import DEDUPE_SECONDS, notifications_for

NOW = datetime(2026, 3, 2, 9, 30, 0, 123456, tzinfo=UTC)
ORG = uuid.UUID(int=1)


def person(n: int, role: Role, name: str) -> UserRef:
    return UserRef(
        id=uuid.UUID(int=100 + n), email=f"{name.lower()}@example.com", name=name, role=role
    )


CUSTOMER = person(1, Role.CUSTOMER, "Carla")
AGENT = person(2, Role.AGENT, "Arne")
OTHER_AGENT = person(3, Role.AGENT, "Olga")
ADMIN = person(4, Role.ADMIN, "Ada")


def snapshot(*, assignee: UserRef | None = AGENT) -> TicketSnapshot:
    return TicketSnapshot(
        id=uuid.UUID(int=7),
        organization_id=ORG,
        subject="Printer on fire",
        status=TicketStatus.OPEN,
        priority=TicketPriority.HIGH,
        customer=CUSTOMER,
        assignee=assignee,
        created_at=NOW,
    )


def message(author: UserRef, participants: list[UserRef]) -> TicketMessageAdded:
    return TicketMessageAdded(
        occurred_at=NOW,
        ticket=snapshot(),
        message_id=uuid.UUID(int=55),
        author=author,
        body="Have you tried water?",
        participants=participants,
    )


def test_a_new_message_mails_every_participant_except_its_author() -> None:
    sent = notifications_for(message(AGENT, [CUSTOMER, AGENT, OTHER_AGENT]))

    assert [n.command.to for n in sent] == ["carla@example.com", "olga@example.com"]
    assert {n.command.template for n in sent} == {"ticket-new-message"}


def test_a_new_message_email_carries_the_template_context_and_keys() -> None:
    [mail] = notifications_for(message(AGENT, [CUSTOMER, AGENT]))

    ticket = uuid.UUID(int=7)
    assert mail.command.context == {
        "recipient_name": "Carla",
        "ticket_id": str(ticket),
        "ticket_subject": "Printer on fire",
        "author_name": "Arne",
        "body": "Have you tried water?",
    }
    assert mail.dedupe_key == f"{ticket}:{CUSTOMER.id}:ticket-new-message"
    assert mail.dedupe_seconds == DEDUPE_SECONDS == 300
    assert mail.command.idempotency_key == (
        f"ticket-new-message:{ticket}:{CUSTOMER.id}:{uuid.UUID(int=55)}"
    )


def test_a_participant_listed_twice_gets_one_email() -> None:
    sent = notifications_for(message(CUSTOMER, [CUSTOMER, AGENT, AGENT]))

    assert [n.command.to for n in sent] == ["arne@example.com"]


def test_the_same_event_always_yields_the_same_idempotency_keys() -> None:
    event = message(AGENT, [CUSTOMER, AGENT, OTHER_AGENT])

    first = [n.command.idempotency_key for n in notifications_for(event)]
    again = [n.command.idempotency_key for n in notifications_for(event.model_copy())]

    assert first == again
    assert len(set(first)) == 2


def status_changed(by: UserRef, *, assignee: UserRef | None = AGENT) -> TicketStatusChanged:
    return TicketStatusChanged(
        occurred_at=NOW,
        ticket=snapshot(assignee=assignee),
        old_status=TicketStatus.OPEN,
        new_status=TicketStatus.RESOLVED,
        changed_by=by,
        participants=[CUSTOMER, AGENT, OTHER_AGENT],
    )


def test_a_status_change_mails_the_customer_and_the_assignee_but_not_the_actor() -> None:
    by_admin = notifications_for(status_changed(ADMIN))
    by_agent = notifications_for(status_changed(AGENT))
    by_customer = notifications_for(status_changed(CUSTOMER))

    assert [n.command.to for n in by_admin] == ["carla@example.com", "arne@example.com"]
    assert [n.command.to for n in by_agent] == ["carla@example.com"]
    assert [n.command.to for n in by_customer] == ["arne@example.com"]
    assert {n.command.template for n in by_admin} == {"ticket-status-change"}


def test_a_status_change_of_an_unassigned_ticket_mails_only_the_customer() -> None:
    sent = notifications_for(status_changed(AGENT, assignee=None))

    assert [n.command.to for n in sent] == ["carla@example.com"]


def test_a_status_change_email_carries_old_and_new_status_and_who_changed_it() -> None:
    [mail] = notifications_for(status_changed(AGENT))

    assert mail.command.context == {
        "recipient_name": "Carla",
        "ticket_id": str(uuid.UUID(int=7)),
        "ticket_subject": "Printer on fire",
        "old_status": "open",
        "new_status": "resolved",
        "changed_by_name": "Arne",
    }
    assert mail.dedupe_key == f"{uuid.UUID(int=7)}:{CUSTOMER.id}:ticket-status-change"
    assert mail.command.idempotency_key.startswith(
        f"ticket-status-change:{uuid.UUID(int=7)}:{CUSTOMER.id}:"
    )
    assert mail.command.idempotency_key.endswith("20260302T093000.123456Z")


def assigned(assignee: UserRef | None, by: UserRef) -> TicketAssigned:
    return TicketAssigned(
        occurred_at=NOW,
        ticket=snapshot(assignee=assignee),
        assignee=assignee,
        assigned_by=by,
    )


def test_an_assignment_mails_the_new_assignee() -> None:
    [mail] = notifications_for(assigned(OTHER_AGENT, ADMIN))

    assert mail.command.to == "olga@example.com"
    assert mail.command.template == "ticket-assigned"
    assert mail.command.context == {
        "recipient_name": "Olga",
        "ticket_id": str(uuid.UUID(int=7)),
        "ticket_subject": "Printer on fire",
        "assigned_by_name": "Ada",
    }
    assert mail.dedupe_key == f"{uuid.UUID(int=7)}:{OTHER_AGENT.id}:ticket-assigned"


def test_self_assignment_and_unassignment_mail_nobody() -> None:
    assert notifications_for(assigned(AGENT, AGENT)) == []
    assert notifications_for(assigned(None, ADMIN)) == []


def test_registration_sends_a_welcome_email_without_dedupe() -> None:
    user = person(9, Role.AGENT, "Nina")
    event = UserRegistered(
        occurred_at=NOW, user=user, organization_id=ORG, organization_name="Acme Support"
    )

    [mail] = notifications_for(event)

    assert mail.command.to == "nina@example.com"
    assert mail.command.template == "welcome"
    assert mail.command.context == {
        "name": "Nina",
        "recipient_name": "Nina",
        "organization_name": "Acme Support",
    }
    assert mail.command.idempotency_key == f"welcome:{user.id}"
    assert mail.dedupe_key is None
    assert mail.command.queue == "email"


def test_events_that_notify_nobody_yield_no_email() -> None:
    ticket = snapshot()
    quiet = [
        TicketCreated(occurred_at=NOW, ticket=ticket, created_by=CUSTOMER),
        TicketPriorityChanged(
            occurred_at=NOW,
            ticket=ticket,
            old_priority=TicketPriority.LOW,
            new_priority=TicketPriority.HIGH,
            changed_by=AGENT,
        ),
        TicketClosed(occurred_at=NOW, ticket=ticket),
    ]

    assert [notifications_for(event) for event in quiet] == [[], [], []]
