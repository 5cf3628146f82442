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
from insightdesk.tickets.notifications import (
    Notification,
    PendingUpdate,
    digest_email,
    flush_key,
    notifications_for,
    on_ticket_opened,
)

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


def held(event: object) -> list[PendingUpdate]:
    planned = notifications_for(event)  # type: ignore[arg-type]
    assert all(isinstance(p, PendingUpdate) for p in planned)
    return [p for p in planned if isinstance(p, PendingUpdate)]


def test_a_new_message_is_held_for_every_participant_except_its_author() -> None:
    updates = held(message(AGENT, [CUSTOMER, AGENT, OTHER_AGENT, CUSTOMER]))

    assert [u.recipient for u in updates] == [CUSTOMER, OTHER_AGENT]
    assert {u.item.kind for u in updates} == {"message"}
    assert updates[0].item.body == "Have you tried water?"
    assert updates[0].flush_key == flush_key(uuid.UUID(int=7), CUSTOMER.id)
    assert updates[0].at == NOW


def status_change(by: UserRef, *, assignee: UserRef | None = AGENT) -> TicketStatusChanged:
    return TicketStatusChanged(
        occurred_at=NOW,
        ticket=snapshot(assignee=assignee),
        old_status=TicketStatus.OPEN,
        new_status=TicketStatus.PENDING,
        changed_by=by,
        participants=[CUSTOMER, AGENT],
    )


def test_a_status_change_is_held_for_customer_and_assignee_but_not_the_actor() -> None:
    assert [u.recipient for u in held(status_change(ADMIN))] == [CUSTOMER, AGENT]
    assert [u.recipient for u in held(status_change(AGENT))] == [CUSTOMER]
    assert [u.recipient for u in held(status_change(ADMIN, assignee=None))] == [CUSTOMER]
    [item] = {u.item for u in held(status_change(AGENT))}
    assert (item.kind, item.old_status, item.new_status, item.by_name) == (
        "status",
        "open",
        "pending",
        "Arne",
    )


def test_an_assignment_is_held_for_the_new_assignee_unless_self_assigned() -> None:
    assigned = TicketAssigned(occurred_at=NOW, ticket=snapshot(), assignee=AGENT, assigned_by=ADMIN)
    self_assigned = TicketAssigned(
        occurred_at=NOW, ticket=snapshot(), assignee=AGENT, assigned_by=AGENT
    )
    unassigned = TicketAssigned(
        occurred_at=NOW, ticket=snapshot(), assignee=None, assigned_by=ADMIN
    )

    assert [u.recipient for u in held(assigned)] == [AGENT]
    assert held(self_assigned) == held(unassigned) == []


def test_registration_sends_a_welcome_email_at_once() -> None:
    event = UserRegistered(
        occurred_at=NOW, user=CUSTOMER, organization_id=ORG, organization_name="Acme"
    )
    [welcome] = notifications_for(event)
    assert isinstance(welcome, Notification)
    assert welcome.command.template == "welcome"
    assert welcome.command.idempotency_key == f"welcome:{CUSTOMER.id}"


def test_events_that_notify_nobody_yield_nothing() -> None:
    closed = TicketClosed(occurred_at=NOW, ticket=snapshot())
    priority = TicketPriorityChanged(
        occurred_at=NOW,
        ticket=snapshot(),
        old_priority=TicketPriority.LOW,
        new_priority=TicketPriority.HIGH,
        changed_by=ADMIN,
    )
    assert notifications_for(closed) == notifications_for(priority) == []


def item_rows(*events: object, recipient: UserRef) -> list[tuple[int, dict[str, object]]]:
    updates = [u for e in events for u in held(e) if u.recipient == recipient]
    return [(n, u.item.model_dump(mode="json")) for n, u in enumerate(updates, start=10)]


def test_one_digest_carries_every_message_and_the_latest_status() -> None:
    m1, m2, m3 = (
        message(AGENT, [CUSTOMER, AGENT]).model_copy(update={"body": f"m{n}"}) for n in (1, 2, 3)
    )
    pending = status_change(AGENT)
    resolved = status_change(AGENT).model_copy(
        update={"old_status": TicketStatus.PENDING, "new_status": TicketStatus.RESOLVED}
    )
    rows = item_rows(m1, m2, pending, m3, resolved, recipient=CUSTOMER)

    mail = digest_email(
        ticket_id=uuid.UUID(int=7),
        subject="Printer on fire",
        status="resolved",
        recipient=CUSTOMER,
        items=rows,
        base_url="https://desk.example/",
    )

    updates = mail.context["updates"]
    assert [u.get("body") for u in updates if u["kind"] == "message"] == ["m1", "m2", "m3"]
    assert [u["new_status"] for u in updates if u["kind"] == "status"] == ["pending", "resolved"]
    assert mail.context["status"] == "resolved"
    assert mail.context["ticket_url"] == f"https://desk.example/tickets/{uuid.UUID(int=7)}"
    assert mail.to == "carla@example.com" and mail.template == "ticket-update"
    assert mail.idempotency_key == f"ticket-update:{uuid.UUID(int=7)}:{CUSTOMER.id}:10-14"


def test_without_a_base_url_a_digest_has_no_link() -> None:
    rows = item_rows(message(AGENT, [CUSTOMER]), recipient=CUSTOMER)
    mail = digest_email(
        ticket_id=uuid.UUID(int=7), subject="s", status="open", recipient=CUSTOMER, items=rows
    )
    assert "ticket_url" not in mail.context


def opened(*, by: UserRef = CUSTOMER, assignee: UserRef | None = None) -> TicketCreated:
    return TicketCreated(occurred_at=NOW, ticket=snapshot(assignee=assignee), created_by=by)


def test_a_new_unassigned_ticket_confirms_to_the_customer_and_tells_the_staff() -> None:
    sent = on_ticket_opened(opened(), staff=[AGENT, ADMIN], base_url="https://desk.example")

    assert [(n.command.to, n.command.context["for_customer"]) for n in sent] == [
        ("carla@example.com", True),
        ("arne@example.com", False),
        ("ada@example.com", False),
    ]
    assert all(n.command.template == "ticket-opened" for n in sent)
    assert all(n.command.context["ticket_url"].endswith(str(uuid.UUID(int=7))) for n in sent)


def test_an_assigned_or_staff_opened_ticket_spares_the_assignee_and_opener() -> None:
    assigned = on_ticket_opened(opened(assignee=AGENT), staff=[AGENT, ADMIN])
    by_agent = on_ticket_opened(opened(by=AGENT), staff=[AGENT, ADMIN])

    assert [n.command.to for n in assigned] == ["carla@example.com"]
    assert [n.command.to for n in by_agent] == ["carla@example.com", "ada@example.com"]
