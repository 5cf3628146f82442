"""The SendEmail template context is a contract the two services agree on.

The tickets service's notification policy produces the commands; the email service validates
their context with ``TEMPLATE_CONTEXTS`` and renders its templates with it. Here both run on
realistic events, so a key renamed on either side (or in a template) fails a test instead of
dead-lettering every mail. (Tests may import both services; the services never import each
other.)
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import jinja2
import pytest
from jinja2 import meta

from insightdesk.email.errors import InvalidTemplateContext
from insightdesk.email.templates import PARTS, TemplateRenderer
from insightdesk.shared.contracts import (
    TEMPLATE_CONTEXTS,
    Contract,
    DigestFiguresContext,
    Event,
    Role,
    SendEmail,
    SlaBreached,
    SlaWarning,
    TicketAssigned,
    TicketAssignedContext,
    TicketClosed,
    TicketCreated,
    TicketMessageAdded,
    TicketNewMessageContext,
    TicketPriority,
    TicketSnapshot,
    TicketStatus,
    TicketStatusChangeContext,
    TicketStatusChanged,
    UserRef,
    UserRegistered,
    template_context,
)
from insightdesk.tickets.notifications import (
    Notification,
    PendingUpdate,
    digest_email,
    notifications_for,
    on_ticket_opened,
)
from insightdesk.tickets.sla_alerts import sla_notifications

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
ORG = uuid.UUID(int=1)
SUBJECT = "Printer <script>alert(1)</script> & fax"

CUSTOMER = UserRef(
    id=uuid.UUID(int=11), email="carla@example.com", name="Carla", role=Role.CUSTOMER
)
AGENT = UserRef(id=uuid.UUID(int=12), email="arne@example.com", name="Arne", role=Role.AGENT)
ADMIN = UserRef(id=uuid.UUID(int=13), email="ada@example.com", name="Ada <Admin>", role=Role.ADMIN)

TICKET = TicketSnapshot(
    id=uuid.UUID(int=7),
    organization_id=ORG,
    subject=SUBJECT,
    status=TicketStatus.OPEN,
    priority=TicketPriority.HIGH,
    customer=CUSTOMER,
    assignee=AGENT,
    created_at=NOW,
)

MESSAGE = TicketMessageAdded(
    occurred_at=NOW,
    ticket=TICKET,
    message_id=uuid.UUID(int=55),
    author=AGENT,
    body="Have you tried water?\n<b>not bold</b>",
    participants=[CUSTOMER, AGENT],
)
RESOLVED = TicketStatusChanged(
    occurred_at=NOW,
    ticket=TICKET,
    old_status=TicketStatus.OPEN,
    new_status=TicketStatus.RESOLVED,
    changed_by=AGENT,
    participants=[CUSTOMER, AGENT],
)
ASSIGNED = TicketAssigned(occurred_at=NOW, ticket=TICKET, assignee=AGENT, assigned_by=ADMIN)


def _digest(*events: Event) -> list[SendEmail]:
    """What the flush job mails for the updates ``events`` hold, per recipient."""
    held = [u for e in events for u in notifications_for(e) if isinstance(u, PendingUpdate)]
    by_recipient: dict[uuid.UUID, list[PendingUpdate]] = {}
    for update in held:
        by_recipient.setdefault(update.recipient.id, []).append(update)
    return [
        digest_email(
            ticket_id=TICKET.id,
            subject=TICKET.subject,
            status=updates[-1].item.new_status or TICKET.status.value,
            recipient=updates[0].recipient,
            items=[(n, u.item.model_dump(mode="json")) for n, u in enumerate(updates, 1)],
        )
        for updates in by_recipient.values()
    ]


def _legacy(template: str, context: Contract) -> list[SendEmail]:
    """Templates the tickets service no longer sends: still rendered for jobs queued before
    notifications were folded into ``ticket-update`` (rolling upgrades)."""
    return [
        SendEmail(
            to=CUSTOMER.email,
            template=template,
            context=template_context(context),
            idempotency_key=f"{template}:legacy",
        )
    ]


base = {"recipient_name": "Carla", "ticket_id": str(TICKET.id), "ticket_subject": SUBJECT}
COMMANDS: dict[str, list[SendEmail]] = {
    "welcome": [
        n.command
        for n in notifications_for(
            UserRegistered(
                occurred_at=NOW, user=CUSTOMER, organization_id=ORG, organization_name="Acme & Co"
            )
        )
        if isinstance(n, Notification)
    ],
    "ticket-update": _digest(MESSAGE, RESOLVED, ASSIGNED),
    "ticket-opened": [
        n.command
        for n in on_ticket_opened(
            TicketCreated(
                occurred_at=NOW,
                ticket=TICKET.model_copy(update={"assignee": None}),
                created_by=CUSTOMER,
            ),
            staff=[AGENT, ADMIN],
            body="Have you tried water?\n<b>not bold</b>",
        )
    ],
    "ticket-new-message": _legacy(
        "ticket-new-message",
        TicketNewMessageContext(**base, author_name="Ada <Admin>", body="<b>not bold</b>"),
    ),
    "ticket-status-change": _legacy(
        "ticket-status-change",
        TicketStatusChangeContext(
            **base, old_status="open", new_status="resolved", changed_by_name="Ada <Admin>"
        ),
    ),
    "ticket-assigned": _legacy(
        "ticket-assigned", TicketAssignedContext(**base, assigned_by_name="Ada <Admin>")
    ),
    "ticket-closed": [
        n.command
        for n in notifications_for(
            TicketClosed(
                occurred_at=NOW,
                ticket=TICKET.model_copy(
                    update={
                        "status": TicketStatus.CLOSED,
                        "resolved_at": NOW - timedelta(days=8),
                        "closed_at": NOW,
                    }
                ),
                reason="auto",
            )
        )
        if isinstance(n, Notification)
    ],
}
"""Per template, the commands the tickets service sends with it."""

SLA_ALERTS: dict[str, SlaWarning | SlaBreached] = {
    "sla-warning": SlaWarning(
        occurred_at=NOW,
        ticket_id=TICKET.id,
        organization_id=ORG,
        target="first_response",
        due_at=NOW,
        remaining_minutes=12.0,
    ),
    "sla-breached": SlaBreached(
        occurred_at=NOW,
        ticket_id=TICKET.id,
        organization_id=ORG,
        target="resolution",
        due_at=NOW,
    ),
}
"""SLA templates: the tickets service answers these SLA events with them (it adds the ticket)."""
COMMANDS.update(
    {
        template: [n.command for n in sla_notifications(alert, ticket=TICKET, staff=[ADMIN])]
        for template, alert in SLA_ALERTS.items()
    }
)

OPTIONAL_VALUES = {
    "login_url": "https://desk.example/login?next=/&x=1",
    "ticket_url": "https://desk.example/tickets/7?tab=1&x=2",
    "ticket_priority": "urgent",
    "body": "Water & more",
    "remaining_minutes": "42",
    "escalation_level": "3",
}
"""A value for every optional key of every context model."""

LOCALES = ["en", "de", "de-AT", "fr"]
TICKET_TEMPLATES = sorted(COMMANDS)
REPORT_TEMPLATES = {"daily-digest", "weekly-report", "report-ready"}
"""Sent by the reports service; their contracts are pinned in tests/unit/reports."""


@pytest.fixture(scope="module")
def renderer() -> TemplateRenderer:
    return TemplateRenderer()


def command_for(template: str) -> SendEmail:
    """The (first) command the tickets service sends with ``template``."""
    commands = COMMANDS[template]
    assert commands, f"the tickets service sends no mail with {template}"
    assert {c.template for c in commands} == {template}
    return commands[0]


def test_every_template_has_an_event_and_the_email_service_has_every_template(
    renderer: TemplateRenderer,
) -> None:
    assert set(COMMANDS) | REPORT_TEMPLATES == set(TEMPLATE_CONTEXTS) == set(renderer.templates)


@pytest.mark.parametrize("template", TICKET_TEMPLATES)
def test_the_tickets_context_is_exactly_the_contract(template: str) -> None:
    context = command_for(template).context
    model = TEMPLATE_CONTEXTS[template].model_validate(context)
    assert template_context(model) == context  # nothing dropped, nothing coerced
    required = {name for name, field in type(model).model_fields.items() if field.is_required()}
    assert required <= set(context)


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("template", TICKET_TEMPLATES)
def test_the_email_service_renders_what_the_tickets_service_sends(
    renderer: TemplateRenderer, template: str, locale: str
) -> None:
    command = command_for(template).model_copy(update={"locale": locale})

    mail = renderer.render(command.template, command.context, command.locale)

    recipient = command.context["recipient_name"]
    assert mail.subject and "\n" not in mail.subject
    assert recipient in mail.text
    assert mail.html.lstrip().startswith("<!DOCTYPE html>")
    if template.startswith(("ticket-", "sla-")):
        assert SUBJECT in mail.text and SUBJECT in mail.subject  # text parts are not HTML
        assert "<script>" not in mail.html
        assert "Printer &lt;script&gt;alert(1)&lt;/script&gt; &amp; fax" in mail.html
        assert str(TICKET.id) in mail.text and str(TICKET.id) in mail.html
    else:
        assert "Acme & Co" in mail.text and "Acme &amp; Co" in mail.html


def test_names_and_bodies_from_the_tickets_service_are_escaped_in_html(
    renderer: TemplateRenderer,
) -> None:
    mails = [renderer.render(c.template, c.context, "en") for c in COMMANDS["ticket-update"]]
    html, text = "".join(m.html for m in mails), "".join(m.text for m in mails)
    assert "Ada &lt;Admin&gt;" in html and "Ada <Admin>" in text
    assert "&lt;b&gt;not bold&lt;/b&gt;" in html and "<b>not bold</b>" in text

    opened = command_for("ticket-opened")
    mail = renderer.render(opened.template, opened.context, "en")
    assert "&lt;b&gt;not bold&lt;/b&gt;" in mail.html and "<b>not bold</b>" in mail.text


@pytest.mark.parametrize("template", TICKET_TEMPLATES)
def test_every_optional_key_of_the_contract_is_rendered_when_given(
    renderer: TemplateRenderer, template: str
) -> None:
    model = TEMPLATE_CONTEXTS[template]
    optional = [name for name, f in model.model_fields.items() if not f.is_required()]
    optional.remove("schema_version")
    assert set(optional) <= set(OPTIONAL_VALUES)
    extra = {name: OPTIONAL_VALUES[name] for name in optional}
    context = template_context(model.model_validate({**command_for(template).context, **extra}))

    for locale in ("en", "de"):
        mail = renderer.render(template, context, locale)
        for value in extra.values():
            assert value in mail.text
            assert value.replace("&", "&amp;") in mail.html


def _variables(env: jinja2.Environment, path: str) -> set[str]:
    assert env.loader is not None
    source, _, _ = env.loader.get_source(env, path)
    return set(meta.find_undeclared_variables(env.parse(source)))


def test_templates_use_only_keys_of_their_contract(renderer: TemplateRenderer) -> None:
    env = renderer.env
    checked = 0
    for path in env.list_templates():
        filename = path.rpartition("/")[2]
        template = filename.split(".", 1)[0]
        if filename.startswith("_") or not any(filename == f"{template}.{p}" for p in PARTS):
            continue
        fields = set(TEMPLATE_CONTEXTS[template].model_fields) - {"schema_version"}
        unknown = _variables(env, path) - fields
        assert not unknown, f"{path} uses {sorted(unknown)}, not in its context contract"
        checked += 1
    # every part in en; in de the welcome, the SLA mails and the three report mails
    assert checked == 3 * (len(TEMPLATE_CONTEXTS) + 1 + len(SLA_ALERTS) + len(REPORT_TEMPLATES))


def test_the_layouts_need_no_context(renderer: TemplateRenderer) -> None:
    layouts = [p for p in renderer.env.list_templates() if "/_layout." in p]
    assert layouts
    assert all(_variables(renderer.env, path) == set() for path in layouts)


def test_the_figures_partials_use_only_keys_of_the_figures_contract(
    renderer: TemplateRenderer,
) -> None:
    partials = [p for p in renderer.env.list_templates() if "/_figures." in p]
    assert len(partials) == 4  # html and text, en and de
    fields = set(DigestFiguresContext.model_fields)
    for path in partials:
        assert _variables(renderer.env, path) <= fields, path


def test_a_context_of_another_template_is_refused_before_rendering(
    renderer: TemplateRenderer,
) -> None:
    context = command_for("ticket-status-change").context
    with pytest.raises(InvalidTemplateContext, match="missing author_name, body"):
        renderer.render("ticket-new-message", context, "en")
