"""Mail templates: jinja2 files in this package, one set per locale, three parts per template.

``templates/<locale>/<name>.subject.txt``, ``<name>.txt`` and ``<name>.html``. HTML parts are
autoescaped (a ticket subject containing ``<script>`` shows as text), text parts and subjects are
not (they are not HTML). ``StrictUndefined`` makes a missing context variable an error instead
of an empty string: a mail saying "Hello ," is worse than a dead-lettered job. A locale falls
back from ``de-AT`` to ``de`` to the default locale (``en``), template by template.

The context of each template is a contract shared with the producers:
``insightdesk.shared.contracts.TEMPLATE_CONTEXTS`` maps a template name to its pydantic model,
and :meth:`TemplateRenderer.render` validates the context against it before rendering. A context
that does not match (a key missing, a value of the wrong type) is an
:class:`~insightdesk.email.errors.InvalidTemplateContext`, permanent like a missing variable. The
keys are flat (no nested mappings)::

    welcome               name, recipient_name, organization_name         [login_url]
    ticket-new-message    recipient_name, ticket_id, ticket_subject, author_name, body
                                                                           [ticket_url]
    ticket-status-change  recipient_name, ticket_id, ticket_subject, old_status, new_status,
                          changed_by_name                                 [ticket_url]
    ticket-assigned       recipient_name, ticket_id, ticket_subject, assigned_by_name
                                                         [ticket_priority, ticket_url]

Names in brackets are optional: the validated context leaves out those not given (or null), and
the templates test them with ``is defined``. Keys a model does not know are dropped. A template
without a model (one added only to this package) gets the context as sent, unvalidated.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jinja2
from pydantic import ValidationError

from insightdesk.email.errors import (
    InvalidTemplateContext,
    MissingTemplateVariable,
    TemplateError,
    UnknownTemplate,
)
from insightdesk.shared.contracts import TEMPLATE_CONTEXTS, Contract, template_context

PARTS = ("subject.txt", "txt", "html")
_LOCALE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})*$")


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    template: str
    locale: str
    subject: str
    text: str
    html: str


def normalize_locale(locale: str) -> str:
    return locale.strip().replace("_", "-").lower()


def locale_candidates(locale: str, default: str) -> list[str]:
    """Locales to try, most specific first: ``de-at`` → ``de-at``, ``de``, default."""
    found: list[str] = []
    wanted = normalize_locale(locale)
    if _LOCALE.fullmatch(wanted):
        parts = wanted.split("-")
        found.extend("-".join(parts[:n]) for n in range(len(parts), 0, -1))
    found.append(default)
    return list(dict.fromkeys(found))


def http_url(value: object) -> str:
    """Template filter for links: only http(s) URLs pass (a ``javascript:`` link would survive
    HTML escaping); anything else becomes ``#``."""
    text = str(value).strip()
    return text if text.lower().startswith(("https://", "http://")) else "#"


def make_environment(loader: jinja2.BaseLoader | None = None) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=loader or jinja2.PackageLoader("insightdesk.email", "templates"),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html",), default_for_string=False, default=False
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters["http_url"] = http_url
    return env


class TemplateRenderer:
    """Renders a template's three parts for a locale; see the module docstring."""

    def __init__(
        self,
        *,
        default_locale: str = "en",
        environment: jinja2.Environment | None = None,
        contexts: Mapping[str, type[Contract]] = TEMPLATE_CONTEXTS,
    ) -> None:
        self.env = environment or make_environment()
        self.contexts = contexts
        self.default_locale = normalize_locale(default_locale)
        self._sets = self._complete_sets()
        if self.default_locale not in self._sets:
            raise TemplateError(f"no templates for the default locale {default_locale!r}")

    def _complete_sets(self) -> dict[str, frozenset[str]]:
        """Per locale, the template names whose three parts all exist."""
        files: dict[str, set[str]] = {}
        for path in self.env.list_templates():
            locale, _, filename = path.partition("/")
            files.setdefault(locale, set()).add(filename)
        sets: dict[str, frozenset[str]] = {}
        for locale, names in files.items():
            stems = {n.split(".", 1)[0] for n in names if not n.startswith("_")}
            sets[locale] = frozenset(
                s for s in stems if all(f"{s}.{part}" in names for part in PARTS)
            )
        return sets

    @property
    def templates(self) -> tuple[str, ...]:
        """The template names (those of the default locale)."""
        return tuple(sorted(self._sets[self.default_locale]))

    def resolve_locale(self, name: str, locale: str) -> str:
        """The locale whose ``name`` template is used for a mail asked in ``locale``."""
        for candidate in locale_candidates(locale, self.default_locale):
            if name in self._sets.get(candidate, ()):
                return candidate
        raise UnknownTemplate(name, self.templates)

    def validate_context(self, name: str, context: Mapping[str, Any]) -> dict[str, Any]:
        """The variables ``name`` is rendered with: ``context`` checked against the template's
        contract and normalised (see the module docstring), or as given for a template that has
        no contract. Raises :class:`InvalidTemplateContext`."""
        model = self.contexts.get(name)
        if model is None:
            return dict(context)
        try:
            validated = model.model_validate(context)
        except ValidationError as exc:
            missing: list[str] = []
            invalid: list[tuple[str, str]] = []
            for error in exc.errors(include_url=False):
                key = ".".join(str(part) for part in error["loc"]) or "context"
                if error["type"] == "missing":
                    missing.append(key)
                else:
                    invalid.append((key, error["msg"]))
            raise InvalidTemplateContext(
                name, missing=tuple(missing), invalid=tuple(invalid)
            ) from exc
        return template_context(validated)

    def render(self, name: str, context: Mapping[str, Any], locale: str) -> RenderedEmail:
        used = self.resolve_locale(name, locale)
        variables = self.validate_context(name, context)
        try:
            subject, text, html = (
                self.env.get_template(f"{used}/{name}.{part}").render(variables) for part in PARTS
            )
        except jinja2.UndefinedError as exc:
            raise MissingTemplateVariable(name, str(exc)) from exc
        except (jinja2.TemplateError, TypeError, ValueError) as exc:
            raise TemplateError(f"email template {name!r} failed to render: {exc}") from exc
        return RenderedEmail(
            template=name,
            locale=used,
            subject=" ".join(subject.split()),  # one line: a header cannot hold line breaks
            text=text.strip() + "\n",
            html=html,
        )
