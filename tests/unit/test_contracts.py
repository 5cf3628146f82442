"""Contracts: names, forward compatibility and validation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from insightdesk.shared.contracts import (
    ALL_EVENTS,
    TEMPLATE_CONTEXTS,
    Role,
    SendEmail,
    TicketCreated,
    TicketPriority,
    TicketSnapshot,
    TicketStatus,
    UserRef,
    WelcomeContext,
    template_context,
)

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def _user(role: Role = Role.CUSTOMER) -> UserRef:
    return UserRef(id=uuid.uuid4(), email="c@example.com", name="Cleo", role=role)


def _ticket() -> TicketSnapshot:
    return TicketSnapshot(
        id=uuid.uuid4(),
        organization_id=uuid.uuid4(),
        subject="Printer on fire",
        status=TicketStatus.OPEN,
        priority=TicketPriority.HIGH,
        customer=_user(),
        created_at=NOW,
    )


def test_event_names_are_unique_and_past_tense_dotted() -> None:
    names = [e.name for e in ALL_EVENTS]
    assert len(names) == len(set(names))
    assert all("." in n and n == n.lower() for n in names)


def test_a_consumer_ignores_fields_a_newer_producer_added() -> None:
    event = TicketCreated(occurred_at=NOW, ticket=_ticket(), created_by=_user())
    wire = event.model_dump(mode="json")
    wire["added_in_v2"] = {"anything": 1}
    wire["schema_version"] = 2
    read = TicketCreated.model_validate(wire)
    assert read.ticket == event.ticket
    assert read.schema_version == 2


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValidationError, match="timezone_aware"):
        TicketCreated(occurred_at=datetime(2026, 1, 1), ticket=_ticket(), created_by=_user())  # noqa: DTZ001


def test_send_email_validates_address_template_and_key() -> None:
    ok = SendEmail(to="a@example.com", template="welcome", idempotency_key="user:1:welcome")
    assert SendEmail.queue == "email"
    assert ok.locale == "en"
    for bad in (
        {"to": "not-an-address", "template": "welcome", "idempotency_key": "k"},
        {"to": "a@example.com", "template": "../etc/passwd", "idempotency_key": "k"},
        {"to": "a@example.com", "template": "welcome", "idempotency_key": ""},
    ):
        with pytest.raises(ValidationError):
            SendEmail.model_validate(bad)


def test_template_contexts_are_flat_and_leave_out_unset_optional_keys() -> None:
    context = WelcomeContext(name="Ada", recipient_name="Ada", organization_name="Acme")
    assert template_context(context) == {
        "name": "Ada",
        "recipient_name": "Ada",
        "organization_name": "Acme",
    }
    assert set(TEMPLATE_CONTEXTS) == {
        "welcome",
        "ticket-new-message",
        "ticket-status-change",
        "ticket-assigned",
        "ticket-update",
        "ticket-opened",
        "daily-digest",
        "weekly-report",
        "report-ready",
        "sla-warning",
        "sla-breached",
        "ticket-closed",
    }


FIGURES_REQUIRED = {
    "organization_name",
    "period_label",
    "new",
    "solved",
    "reopened",
    "closed",
    "unassigned",
}


def test_template_context_fields_added_later_have_defaults() -> None:
    # The keys the first revision sent are required; every other key must be optional so that
    # an older producer's context still validates (a contract only gains defaulted fields).
    first_revision = {
        "welcome": {"name", "recipient_name", "organization_name"},
        "ticket-new-message": {
            "recipient_name",
            "ticket_id",
            "ticket_subject",
            "author_name",
            "body",
        },
        "ticket-status-change": {
            "recipient_name",
            "ticket_id",
            "ticket_subject",
            "old_status",
            "new_status",
            "changed_by_name",
        },
        "ticket-assigned": {"recipient_name", "ticket_id", "ticket_subject", "assigned_by_name"},
        "ticket-update": {"recipient_name", "ticket_id", "ticket_subject", "status", "updates"},
        "ticket-opened": {
            "recipient_name",
            "ticket_id",
            "ticket_subject",
            "customer_name",
            "opened_by_name",
            "ticket_priority",
            "for_customer",
        },
        "daily-digest": {*FIGURES_REQUIRED, "recipient_name"},
        "weekly-report": {*FIGURES_REQUIRED, "recipient_name"},
        "report-ready": {
            "recipient_name",
            "export_id",
            "format",
            "rows",
            "download_url",
            "expires_at",
        },
        "sla-warning": {"recipient_name", "ticket_id", "ticket_subject", "target", "due_at"},
        "sla-breached": {"recipient_name", "ticket_id", "ticket_subject", "target", "due_at"},
        "ticket-closed": {"recipient_name", "ticket_id", "ticket_subject", "resolved_days"},
    }
    for template, model in TEMPLATE_CONTEXTS.items():
        required = {name for name, field in model.model_fields.items() if field.is_required()}
        assert required == first_revision[template], template
