"""What can go wrong delivering a mail, sorted by what the queue should do about it.

Handlers and providers raise these; the broker adapter (``app.py``) maps them onto the queue:
a :class:`PermanentDeliveryError` rejects the job into the dead letter at once, a
:class:`TransientDeliveryError` is a failed attempt (retried after ``retry_after`` when the
provider said so, else with the queue's backoff), and :class:`DeliveryInProgress` postpones the
job without using an attempt while another job holds the same idempotency key.
"""

from __future__ import annotations

from insightdesk.shared.errors import InsightDeskError


class DeliveryError(InsightDeskError):
    """Base of the email service's delivery errors."""


class PermanentDeliveryError(DeliveryError):
    """Retrying cannot help (unknown template, invalid context, missing variable, provider refused
    the mail)."""


class TemplateError(PermanentDeliveryError):
    """A template cannot be rendered."""


class UnknownTemplate(TemplateError):
    def __init__(self, name: str, known: tuple[str, ...]) -> None:
        self.name = name
        super().__init__(
            f"unknown email template {name!r} (known templates: {', '.join(known) or 'none'})"
        )


class MissingTemplateVariable(TemplateError):
    def __init__(self, name: str, detail: str) -> None:
        self.name = name
        super().__init__(
            f"email template {name!r} needs a context variable that is missing: {detail}"
        )


class InvalidTemplateContext(TemplateError):
    """The context does not match the template's contract (``TEMPLATE_CONTEXTS``): names the
    ``missing`` keys and, for each ``invalid`` one, what is wrong with it."""

    def __init__(
        self, name: str, *, missing: tuple[str, ...], invalid: tuple[tuple[str, str], ...]
    ) -> None:
        self.name = name
        self.missing = missing
        self.invalid = invalid
        problems = []
        if missing:
            problems.append(f"missing {', '.join(missing)}")
        problems.extend(f"invalid {key} ({reason})" for key, reason in invalid)
        super().__init__(
            f"email template {name!r} got a context that does not match its contract: "
            + "; ".join(problems)
        )


class TransientDeliveryError(DeliveryError):
    """The provider may accept the mail later. ``retry_after``: seconds it asked us to wait."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class DeliveryInProgress(DeliveryError):
    """Another job is delivering a mail with this idempotency key; look again later."""

    def __init__(self, idempotency_key: str, retry_in: float) -> None:
        self.retry_in = retry_in
        super().__init__(
            f"a delivery with idempotency key {idempotency_key!r} is in progress; "
            f"checking again in {retry_in:.0f}s"
        )
