"""Organizations and users: the bootstrap endpoint, user registration, who-am-I."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Depends, status
from fastapi.security import HTTPAuthorizationCredentials

from insightdesk.tickets import accounts
from insightdesk.tickets.api.dependencies import Caller, Runtime, Unit, bearer, get_runtime
from insightdesk.tickets.api.schemas import (
    OrganizationCreated,
    OrganizationOut,
    Problem,
    UserCreated,
    UserOut,
)
from insightdesk.tickets.commands import CreateOrganization, CreateUser, UpdateOrganization
from insightdesk.tickets.errors import NotAuthenticated, NotFound

AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "No or unknown API token"},
    403: {"model": Problem, "description": "The caller's role does not allow this"},
}


async def require_operator(
    runtime: Annotated[Runtime, Depends(get_runtime)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """Outside development, creating an organization takes the operator token."""
    settings = runtime.settings
    if settings.environment == "development":
        return
    expected = settings.operator_token
    given = credentials.credentials if credentials else ""
    if expected is None or not hmac.compare_digest(
        given.encode(), expected.get_secret_value().encode()
    ):
        raise NotAuthenticated("creating an organization needs the operator token")


bootstrap = APIRouter(
    tags=["organizations"],
    dependencies=[Depends(require_operator)],
    responses={401: {"model": Problem, "description": "No or wrong operator token"}},
)
users = APIRouter(tags=["users"], responses=AUTH_ERRORS)
organizations = APIRouter(tags=["organizations"], responses=AUTH_ERRORS)


@organizations.get("/organizations/me", summary="Your organization and its settings (admins)")
async def get_organization(caller: Caller, unit: Unit) -> OrganizationOut:
    organization = await accounts.get_organization(actor=caller, repo=unit.repo)
    return OrganizationOut.of(organization)


@organizations.patch(
    "/organizations/me",
    summary="Change your organization's settings (admins)",
    responses={422: {"model": Problem, "description": "Unknown time zone or a bad value"}},
)
async def update_organization(
    body: UpdateOrganization, caller: Caller, unit: Unit
) -> OrganizationOut:
    """``time_zone`` (IANA), ``locale``, ``auto_close_after_days`` (0 = never), ``name``.
    Publishes ``organization.updated`` when anything changed."""
    organization = await accounts.update_organization(
        body, actor=caller, repo=unit.repo, outbox=unit.outbox, now=unit.now
    )
    response = OrganizationOut.of(organization)
    await unit.commit()
    return response


@bootstrap.post(
    "/organizations",
    status_code=status.HTTP_201_CREATED,
    summary="Create an organization and its first admin (bootstrap; operator token outside "
    "development)",
)
async def create_organization(body: CreateOrganization, unit: Unit) -> OrganizationCreated:
    """Creates a tenant with its first admin and returns the admin's API token — the only time
    it is shown. Outside development the caller sends ``Authorization: Bearer <operator
    token>`` (``TICKETS_OPERATOR_TOKEN``); not served (404) when ``TICKETS_ALLOW_BOOTSTRAP=false``
    or, outside development, when no operator token is configured."""
    registration = await accounts.create_organization(
        body, repo=unit.repo, outbox=unit.outbox, now=unit.now
    )
    await unit.commit()
    return OrganizationCreated.of(registration)


@users.post(
    "/users",
    status_code=status.HTTP_201_CREATED,
    summary="Create a user in your organization (admins only)",
    responses={409: {"model": Problem, "description": "E-mail already used in the organization"}},
)
async def create_user(body: CreateUser, caller: Caller, unit: Unit) -> UserCreated:
    """Registers an admin, agent or customer; publishes ``user.registered`` and queues the
    welcome e-mail. The new user's API token is in this response only."""
    registration = await accounts.create_user(
        body, actor=caller, repo=unit.repo, outbox=unit.outbox, now=unit.now
    )
    await unit.commit()
    return UserCreated.of(registration)


@users.get("/users/me", summary="The user the token belongs to")
async def me(caller: Caller, unit: Unit) -> UserOut:
    user = await unit.repo.user(caller.organization_id, caller.id)
    if user is None:  # deleted between authentication and this read: cannot happen in one tx
        raise NotFound("user not found")
    return UserOut.of(user)
