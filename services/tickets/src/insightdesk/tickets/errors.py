"""Errors of the ticket domain; the HTTP layer maps each to one status code.

They derive from the project's root error so callers can catch "ours" in one place.
"""

from __future__ import annotations

from insightdesk.shared.errors import InsightDeskError


class TicketsError(InsightDeskError):
    """Root of the errors the tickets service raises on purpose."""


class NotAuthenticated(TicketsError):
    """No API token, or one that belongs to no user (HTTP 401)."""


class Forbidden(TicketsError):
    """The caller is known but their role does not allow the action (HTTP 403)."""


class NotFound(TicketsError, LookupError):
    """No such resource in the caller's organization, or not visible to the caller (HTTP 404).

    A ticket of another organization, or another customer's ticket, is reported as missing
    rather than forbidden, so ids never reveal what exists elsewhere."""


class Conflict(TicketsError):
    """The request clashes with existing data, e.g. an e-mail address already in use (409)."""


class InvalidTransition(Conflict):
    """The ticket's current state does not allow the change (e.g. a closed ticket is final)."""


class InvalidInput(TicketsError, ValueError):
    """A well-formed request names something unusable, e.g. an assignee who is a customer
    (HTTP 422, reported like a validation error of ``field``)."""

    def __init__(self, field: str, message: str, kind: str = "value_error") -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.kind = kind
