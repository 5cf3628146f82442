"""The identity use cases: bootstrap an organization, register users, authenticate a token.

Plain async functions like :mod:`insightdesk.tickets.handlers`; a registration publishes
``user.registered`` (and the welcome e-mail) in the transaction that creates the user.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from insightdesk.shared.contracts import (
    OrganizationCreated,
    OrganizationSnapshot,
    OrganizationUpdated,
    Role,
    UserRegistered,
)
from insightdesk.tickets.commands import CreateOrganization, CreateUser, UpdateOrganization
from insightdesk.tickets.errors import NotAuthenticated, NotFound
from insightdesk.tickets.models import Organization, User
from insightdesk.tickets.permissions import Actor, require_admin
from insightdesk.tickets.ports import Outbox, emit
from insightdesk.tickets.repository import TicketRepository, user_ref
from insightdesk.tickets.tokens import issue_token, token_hash


@dataclass(frozen=True, slots=True)
class Registration:
    """A new user and their API token (the only time the token is ever seen)."""

    organization: Organization
    user: User
    api_token: str


async def authenticate(token: str | None, *, repo: TicketRepository) -> Actor:
    """The user whose API token ``token`` is."""
    if not token:
        raise NotAuthenticated("missing bearer token")
    user = await repo.user_by_token_hash(token_hash(token))
    if user is None:
        raise NotAuthenticated("invalid bearer token")
    return Actor(user.id, user.organization_id, user.email, user.name, user.role)


async def create_organization(
    command: CreateOrganization, *, repo: TicketRepository, outbox: Outbox, now: datetime
) -> Registration:
    """Bootstrap a tenant: the organization and its first admin (who gets a welcome e-mail).
    Publishes ``organization.created`` with its settings."""
    organization = Organization(
        id=uuid.uuid4(),
        name=command.name,
        created_at=now,
        time_zone=command.time_zone,
        locale=command.locale,
        auto_close_after_days=command.auto_close_after_days,
    )
    await repo.add_organization(organization)
    await emit(
        OrganizationCreated(occurred_at=now, organization=organization_snapshot(organization)),
        outbox=outbox,
    )
    admin = command.admin
    return await _register(
        organization, admin.email, admin.name, Role.ADMIN, repo=repo, outbox=outbox, now=now
    )


async def create_user(
    command: CreateUser,
    *,
    actor: Actor,
    repo: TicketRepository,
    outbox: Outbox,
    now: datetime,
) -> Registration:
    require_admin(actor, "create users")
    organization = await repo.organization(actor.organization_id)
    if organization is None:  # the actor's own organization: only gone if deleted meanwhile
        raise NotFound("organization not found")
    return await _register(
        organization, command.email, command.name, command.role, repo=repo, outbox=outbox, now=now
    )


async def get_organization(*, actor: Actor, repo: TicketRepository) -> Organization:
    """The caller's organization with its settings (admins only)."""
    require_admin(actor, "read the organization's settings")
    organization = await repo.organization(actor.organization_id)
    if organization is None:
        raise NotFound("organization not found")
    return organization


async def update_organization(
    command: UpdateOrganization,
    *,
    actor: Actor,
    repo: TicketRepository,
    outbox: Outbox,
    now: datetime,
) -> Organization:
    """Change the caller's organization's settings (admins only); publishes
    ``organization.updated`` with the new settings when anything changed."""
    require_admin(actor, "change the organization's settings")
    organization = await repo.organization(actor.organization_id, lock=True)
    if organization is None:
        raise NotFound("organization not found")
    changed = []
    for field, value in command.model_dump(exclude_none=True).items():
        if getattr(organization, field) != value:
            setattr(organization, field, value)
            changed.append(field)
    if changed:
        organization.updated_at = now
        await repo.flush()
        event = OrganizationUpdated(
            occurred_at=now, organization=organization_snapshot(organization), changed=changed
        )
        await emit(event, outbox=outbox)
    return organization


def organization_snapshot(organization: Organization) -> OrganizationSnapshot:
    return OrganizationSnapshot(
        id=organization.id,
        name=organization.name,
        time_zone=organization.time_zone,
        locale=organization.locale,
        auto_close_after_days=organization.auto_close_after_days,
        created_at=organization.created_at,
    )


async def _register(
    organization: Organization,
    email: str,
    name: str,
    role: Role,
    *,
    repo: TicketRepository,
    outbox: Outbox,
    now: datetime,
) -> Registration:
    token = issue_token()
    user = User(
        id=uuid.uuid4(),
        organization_id=organization.id,
        email=email,
        name=name,
        role=role,
        api_token_hash=token_hash(token),
        created_at=now,
    )
    await repo.add_user(user)
    event = UserRegistered(
        occurred_at=now,
        user=user_ref(user),
        organization_id=organization.id,
        organization_name=organization.name,
    )
    await emit(event, outbox=outbox)
    return Registration(organization, user, token)
