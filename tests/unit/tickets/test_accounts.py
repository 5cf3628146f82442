"""Pure pieces of identity: tokens are random and stored hashed; role rules; input checks."""

from __future__ import annotations

import hashlib
import uuid

import pytest
from pydantic import ValidationError

from insightdesk.shared.contracts import Role, TicketStatus
from insightdesk.tickets.commands import AddMessage, CreateTicket, CreateUser
from insightdesk.tickets.errors import Forbidden
from insightdesk.tickets.permissions import (
    Actor,
    require_admin,
    require_staff,
    require_status_allowed,
)
from insightdesk.tickets.settings import TicketsSettings
from insightdesk.tickets.tokens import issue_token, token_hash


def actor(role: Role) -> Actor:
    return Actor(uuid.uuid4(), uuid.uuid4(), "x@example.com", "X", role)


def test_tokens_are_unique_and_stored_as_their_sha256() -> None:
    first, second = issue_token(), issue_token()

    assert first != second
    assert len(first) > 40
    assert token_hash(first) == hashlib.sha256(first.encode()).hexdigest()
    assert token_hash(first) != token_hash(second)


def test_only_admins_pass_the_admin_check() -> None:
    require_admin(actor(Role.ADMIN), "create users")
    for role in (Role.AGENT, Role.CUSTOMER):
        with pytest.raises(Forbidden, match="only an admin may create users"):
            require_admin(actor(role), "create users")


def test_customers_are_not_staff() -> None:
    require_staff(actor(Role.AGENT), "assign tickets")
    with pytest.raises(Forbidden):
        require_staff(actor(Role.CUSTOMER), "assign tickets")
    assert actor(Role.CUSTOMER).visible_customer() is not None
    assert actor(Role.AGENT).visible_customer() is None


def test_customers_may_not_set_pending() -> None:
    customer = actor(Role.CUSTOMER)
    for allowed in (TicketStatus.OPEN, TicketStatus.RESOLVED, TicketStatus.CLOSED):
        require_status_allowed(customer, allowed)
    with pytest.raises(Forbidden):
        require_status_allowed(customer, TicketStatus.PENDING)
    require_status_allowed(actor(Role.AGENT), TicketStatus.PENDING)


def test_emails_are_normalised_and_checked() -> None:
    user = CreateUser(email="  Ada@Example.COM ", name=" Ada ")

    assert (user.email, user.name, user.role) == ("ada@example.com", "Ada", Role.CUSTOMER)
    with pytest.raises(ValidationError, match="valid email address"):
        CreateUser(email="ada@localhost", name="Ada")


def test_unknown_fields_and_blank_text_are_refused() -> None:
    with pytest.raises(ValidationError, match="extra"):
        CreateTicket.model_validate({"subject": "Hi", "colour": "red"})
    with pytest.raises(ValidationError):
        CreateTicket(subject="   ")
    with pytest.raises(ValidationError):
        AddMessage(body=" \n ")


def test_settings_read_the_tickets_prefix_and_the_shared_database_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://db/insightdesk")
    monkeypatch.setenv("TICKETS_HTTP_PORT", "8123")
    monkeypatch.setenv("TICKETS_ALLOW_BOOTSTRAP", "false")
    monkeypatch.setenv("INSIGHTDESK_SPANS_DIR", "/tmp/spans")

    settings = TicketsSettings()

    assert settings.database_url == "postgresql://db/insightdesk"
    assert (settings.http_host, settings.http_port) == ("127.0.0.1", 8123)
    assert settings.allow_bootstrap is False
    assert str(settings.spans_file) == "/tmp/spans/tickets.jsonl"
