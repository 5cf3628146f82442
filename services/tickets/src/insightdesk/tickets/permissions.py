"""Who may do what (pure): the authenticated caller and the role rules of the API.

* admins: everything in their organization, including creating users;
* agents: every ticket of their organization (read, reply, status, assign, priority);
* customers: only their own tickets — open, read, reply, and set them ``open``, ``resolved``
  or ``closed``; never assign, change priority or set ``pending`` (that means "waiting on the
  customer", an agent's call).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from insightdesk.shared.contracts import Role, TicketStatus, UserRef
from insightdesk.tickets.errors import Forbidden

STAFF = frozenset({Role.ADMIN, Role.AGENT})
CUSTOMER_STATUSES = frozenset({TicketStatus.OPEN, TicketStatus.RESOLVED, TicketStatus.CLOSED})


@dataclass(frozen=True, slots=True)
class Actor:
    """The user a request acts as (resolved from its API token)."""

    id: uuid.UUID
    organization_id: uuid.UUID
    email: str
    name: str
    role: Role

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF

    @property
    def ref(self) -> UserRef:
        return UserRef(id=self.id, email=self.email, name=self.name, role=self.role)

    def visible_customer(self) -> uuid.UUID | None:
        """The only customer whose tickets this actor sees (None: every ticket of the org)."""
        return None if self.is_staff else self.id


def require_admin(actor: Actor, action: str) -> None:
    if actor.role != Role.ADMIN:
        raise Forbidden(f"only an admin may {action}")


def require_staff(actor: Actor, action: str) -> None:
    if not actor.is_staff:
        raise Forbidden(f"only an agent or admin may {action}")


def require_status_allowed(actor: Actor, target: TicketStatus) -> None:
    if not actor.is_staff and target not in CUSTOMER_STATUSES:
        raise Forbidden(f"a customer cannot set a ticket to {target.value}")
