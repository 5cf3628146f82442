"""Composing the outgoing mail: identifiers derived from the idempotency key, headers, MIME."""

from __future__ import annotations

import email
from datetime import UTC, datetime
from email import policy

import pytest

from insightdesk.email.errors import PermanentDeliveryError
from insightdesk.email.messages import (
    IDEMPOTENCY_HEADER,
    TRACE_HEADER,
    address_domain,
    compose,
    message_id_for,
)
from insightdesk.email.templates import RenderedEmail

RENDERED = RenderedEmail(
    template="welcome", locale="en", subject="Grüße", text="plain body\n", html="<p>html body</p>"
)
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def test_the_message_id_is_stable_per_key_and_differs_between_keys() -> None:
    first = message_id_for("user.registered/42", "example.com")
    assert first == message_id_for("user.registered/42", "example.com")
    assert first != message_id_for("user.registered/43", "example.com")
    assert first.startswith("<") and first.endswith("@example.com>")


def test_the_domain_comes_from_the_from_address() -> None:
    assert address_domain("InsightDesk <no-reply@desk.example>") == "desk.example"
    assert address_domain("not an address") == "insightdesk.local"


def test_the_mime_message_has_both_parts_and_the_tracking_headers() -> None:
    mail = compose(
        RENDERED,
        sender="InsightDesk <no-reply@desk.example>",
        to="ada@example.com",
        idempotency_key="k-1",
        message_id="<abc@desk.example>",
        trace_id="0af7651916cd43dd8448eb211c80319c",
        now=NOW,
    )
    parsed = email.message_from_bytes(mail.as_bytes(), policy=policy.default)
    assert parsed["Message-ID"] == "<abc@desk.example>"
    assert parsed[IDEMPOTENCY_HEADER] == "k-1"
    assert parsed[TRACE_HEADER] == "0af7651916cd43dd8448eb211c80319c"
    assert parsed["Subject"] == "Grüße" and parsed["To"] == "ada@example.com"
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed.get_content_type() == "multipart/alternative"
    text = parsed.get_body(("plain",))
    html = parsed.get_body(("html",))
    assert text is not None and text.get_content().strip() == "plain body"
    assert html is not None and "<p>html body</p>" in html.get_content()
    assert b"\r\n" in mail.as_bytes()  # wire form


def test_no_trace_header_without_a_trace() -> None:
    mail = compose(
        RENDERED,
        sender="a@desk.example",
        to="b@example.com",
        idempotency_key="k",
        message_id="<m@desk.example>",
        trace_id=None,
        now=NOW,
    )
    assert TRACE_HEADER not in mail.headers


def test_a_key_with_a_line_break_cannot_inject_headers() -> None:
    with pytest.raises(PermanentDeliveryError):
        compose(
            RENDERED,
            sender="a@desk.example",
            to="b@example.com",
            idempotency_key="k\r\nBcc: victim@example.com",
            message_id="<m@desk.example>",
            trace_id=None,
            now=NOW,
        )
