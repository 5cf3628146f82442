"""Mail templates: three parts, autoescaped HTML, contract-checked and strict variables, locale
fallback."""

from __future__ import annotations

from typing import Any

import jinja2
import pytest

from insightdesk.email.errors import (
    InvalidTemplateContext,
    MissingTemplateVariable,
    PermanentDeliveryError,
    UnknownTemplate,
)
from insightdesk.email.templates import (
    PARTS,
    TemplateRenderer,
    locale_candidates,
    make_environment,
)
from insightdesk.shared.contracts import TEMPLATE_CONTEXTS

TICKET = {"ticket_id": "7f1c", "ticket_subject": "Printer <script>alert(1)</script> & fax"}

CONTEXTS: dict[str, dict[str, Any]] = {
    "welcome": {"name": "Ada", "recipient_name": "Ada", "organization_name": "Acme"},
    "ticket-new-message": {
        "recipient_name": "Ada",
        **TICKET,
        "author_name": "Bob",
        "body": "Line one\n<b>not bold</b>",
    },
    "ticket-status-change": {
        "recipient_name": "Ada",
        **TICKET,
        "old_status": "open",
        "new_status": "resolved",
        "changed_by_name": "Bob",
    },
    "ticket-assigned": {
        "recipient_name": "Ada",
        **TICKET,
        "assigned_by_name": "Bob",
    },
    "ticket-closed": {"recipient_name": "Ada", **TICKET, "resolved_days": 8},
}


@pytest.fixture(scope="module")
def renderer() -> TemplateRenderer:
    return TemplateRenderer()


def test_the_templates_exist(renderer: TemplateRenderer) -> None:
    assert renderer.templates == (
        "daily-digest",
        "report-ready",
        "sla-breached",
        "sla-warning",
        "ticket-assigned",
        "ticket-closed",
        "ticket-new-message",
        "ticket-opened",
        "ticket-status-change",
        "ticket-update",
        "weekly-report",
        "welcome",
    )


@pytest.mark.parametrize("name", sorted(CONTEXTS))
def test_every_template_renders_a_subject_a_text_and_an_html_part(
    renderer: TemplateRenderer, name: str
) -> None:
    mail = renderer.render(name, CONTEXTS[name], "en")
    assert mail.template == name and mail.locale == "en"
    assert mail.subject and "\n" not in mail.subject
    assert "Ada" in mail.text and "<html" not in mail.text
    assert mail.html.lstrip().startswith("<!DOCTYPE html>") and "Ada" in mail.html


@pytest.mark.parametrize("name", ["ticket-new-message", "ticket-status-change", "ticket-assigned"])
def test_a_ticket_subject_with_markup_is_escaped_in_html_and_unchanged_in_text(
    renderer: TemplateRenderer, name: str
) -> None:
    mail = renderer.render(name, CONTEXTS[name], "en")
    assert "<script>" not in mail.html
    assert "Printer &lt;script&gt;alert(1)&lt;/script&gt; &amp; fax" in mail.html
    assert "Printer <script>alert(1)</script> & fax" in mail.text
    assert "<script>alert(1)</script>" in mail.subject  # a header is not HTML


def test_a_message_body_is_escaped_in_html_and_kept_in_text(renderer: TemplateRenderer) -> None:
    mail = renderer.render("ticket-new-message", CONTEXTS["ticket-new-message"], "en")
    assert "&lt;b&gt;not bold&lt;/b&gt;" in mail.html
    assert "Line one\n<b>not bold</b>" in mail.text


def test_optional_variables_appear_only_when_given(renderer: TemplateRenderer) -> None:
    without = renderer.render("welcome", CONTEXTS["welcome"], "en")
    with_url = renderer.render(
        "welcome", {**CONTEXTS["welcome"], "login_url": "https://desk.example/login?a=1&b=2"}, "en"
    )
    assert "https://desk.example" not in without.text + without.html
    assert "Sign in: https://desk.example/login?a=1&b=2" in with_url.text
    assert 'href="https://desk.example/login?a=1&amp;b=2"' in with_url.html


def test_optional_variables_given_as_null_count_as_not_given(renderer: TemplateRenderer) -> None:
    mail = renderer.render("welcome", {**CONTEXTS["welcome"], "login_url": None}, "en")
    assert "Sign in" not in mail.text and "None" not in mail.text + mail.html


def test_an_assignment_names_the_priority_only_when_given(renderer: TemplateRenderer) -> None:
    without = renderer.render("ticket-assigned", CONTEXTS["ticket-assigned"], "en")
    with_priority = renderer.render(
        "ticket-assigned", {**CONTEXTS["ticket-assigned"], "ticket_priority": "high"}, "en"
    )
    assert "was assigned to you" in without.subject
    assert "Bob assigned the ticket" in without.text and "priority" not in without.text
    assert "(priority high) to you." in with_priority.text
    assert "(priority high) to you." in with_priority.html


def test_every_template_has_a_context_contract(renderer: TemplateRenderer) -> None:
    assert set(renderer.templates) == set(TEMPLATE_CONTEXTS)


def test_an_unknown_template_is_a_permanent_error_naming_it(renderer: TemplateRenderer) -> None:
    with pytest.raises(UnknownTemplate, match="'password-reset'") as info:
        renderer.render("password-reset", {}, "en")
    assert isinstance(info.value, PermanentDeliveryError)
    assert "welcome" in str(info.value)  # says which templates exist


@pytest.mark.parametrize(
    ("name", "drop"),
    [
        ("welcome", "organization_name"),
        ("ticket-new-message", "body"),
        ("ticket-status-change", "changed_by_name"),
        ("ticket-assigned", "assigned_by_name"),
    ],
)
def test_a_missing_context_key_is_a_permanent_error_naming_it(
    renderer: TemplateRenderer, name: str, drop: str
) -> None:
    context = {k: v for k, v in CONTEXTS[name].items() if k != drop}
    with pytest.raises(InvalidTemplateContext, match=f"missing {drop}") as info:
        renderer.render(name, context, "en")
    assert isinstance(info.value, PermanentDeliveryError)
    assert info.value.missing == (drop,)


def test_the_old_nested_context_is_refused_naming_every_missing_key(
    renderer: TemplateRenderer,
) -> None:
    nested = {
        "recipient": {"name": "Ada"},
        "ticket": {"id": "1", "subject": "Printer"},
        "old_status": "open",
        "new_status": "resolved",
        "changed_by": {"name": "Bob"},
    }
    with pytest.raises(InvalidTemplateContext) as info:
        renderer.render("ticket-status-change", nested, "en")
    assert info.value.missing == (
        "recipient_name",
        "ticket_id",
        "ticket_subject",
        "changed_by_name",
    )
    assert "missing recipient_name, ticket_id, ticket_subject, changed_by_name" in str(info.value)


def test_a_context_value_of_the_wrong_type_is_a_permanent_error_naming_it(
    renderer: TemplateRenderer,
) -> None:
    context = {**CONTEXTS["ticket-new-message"], "ticket_id": 7, "body": {"text": "hi"}}
    with pytest.raises(InvalidTemplateContext, match="invalid ticket_id") as info:
        renderer.render("ticket-new-message", context, "en")
    assert isinstance(info.value, PermanentDeliveryError)
    assert [key for key, _ in info.value.invalid] == ["ticket_id", "body"]
    assert info.value.missing == ()


def test_a_variable_the_contract_does_not_cover_is_still_a_strict_error() -> None:
    loader = jinja2.DictLoader(
        {f"en/welcome.{part}": "{{ recipient_name }} {{ nickname }}" for part in PARTS}
    )
    renderer = TemplateRenderer(environment=make_environment(loader))
    with pytest.raises(MissingTemplateVariable, match="nickname") as info:
        renderer.render("welcome", {**CONTEXTS["welcome"], "nickname": "A"}, "en")
    assert isinstance(info.value, PermanentDeliveryError)  # keys outside the contract are dropped


def test_a_template_without_a_contract_gets_the_context_as_sent() -> None:
    loader = jinja2.DictLoader(
        {f"en/digest.{part}": "{{ user.name }}: {{ count }}" for part in PARTS}
    )
    renderer = TemplateRenderer(environment=make_environment(loader))
    mail = renderer.render("digest", {"user": {"name": "Ada"}, "count": 3}, "en")
    assert mail.subject == "Ada: 3"
    with pytest.raises(MissingTemplateVariable, match="count"):
        renderer.render("digest", {"user": {"name": "Ada"}}, "en")


def test_an_unknown_locale_falls_back_to_english(renderer: TemplateRenderer) -> None:
    mail = renderer.render("welcome", CONTEXTS["welcome"], "fr-CA")
    assert mail.locale == "en" and mail.subject == "Welcome to Acme on InsightDesk"


def test_a_regional_locale_uses_its_language(renderer: TemplateRenderer) -> None:
    mail = renderer.render("welcome", CONTEXTS["welcome"], "de_AT")
    assert mail.locale == "de" and mail.subject == "Willkommen bei Acme auf InsightDesk"
    assert 'lang="de"' in mail.html and "Hallo Ada" in mail.text


def test_a_template_missing_in_a_locale_falls_back_per_template(renderer: TemplateRenderer) -> None:
    mail = renderer.render("ticket-assigned", CONTEXTS["ticket-assigned"], "de")
    assert mail.locale == "en"


@pytest.mark.parametrize(
    ("asked", "expected"),
    [
        ("en", ["en"]),
        ("de-AT", ["de-at", "de", "en"]),
        ("../../etc", ["en"]),
        ("", ["en"]),
    ],
)
def test_locale_candidates_go_from_specific_to_default(asked: str, expected: list[str]) -> None:
    assert locale_candidates(asked, "en") == expected


def test_links_other_than_http_are_neutralised(renderer: TemplateRenderer) -> None:
    context = {**CONTEXTS["ticket-status-change"], "ticket_url": "javascript:alert(1)"}
    mail = renderer.render("ticket-status-change", context, "en")
    assert 'href="#"' in mail.html and "javascript:" not in mail.html
