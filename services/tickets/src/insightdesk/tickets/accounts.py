"""The identity use cases: bootstrap an organization, register users, authenticate a token.

Plain async functions like :mod:`insightdesk.tickets.handlers`; a registration publishes
``user.registered`` (and the welcome e-mail) in the transaction that creates the user.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from insightdesk.shared.contracts import Role, UserRegistered
from insightdesk.tickets.commands import CreateOrganization, CreateUser
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
    """Bootstrap a tenant: the organization and its first admin (who gets a welcome e-mail)."""
    organization = Organization(id=uuid.uuid4(), name=command.name, created_at=now)
    await repo.add_organization(organization)
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
