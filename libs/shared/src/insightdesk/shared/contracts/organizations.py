"""Organization events: the organization's settings, carried to every service that keeps its
own copy (reports: local digest hour; SLA: business-calendar zone; tickets' worker: auto-close)."""

from __future__ import annotations

import uuid
from typing import ClassVar

from pydantic import Field

from insightdesk.shared.contracts.base import AwareDatetime, Contract, Event


class OrganizationSnapshot(Contract):
    """An organization's settings when the event happened."""

    id: uuid.UUID
    name: str
    time_zone: str = "UTC"
    """IANA zone name (``Europe/Berlin``)."""
    locale: str = "en"
    auto_close_after_days: int = Field(default=7, ge=0)
    """Resolved tickets close after this many days; 0 = never."""
    created_at: AwareDatetime


class OrganizationCreated(Event):
    name: ClassVar[str] = "organization.created"
    organization: OrganizationSnapshot


class OrganizationUpdated(Event):
    name: ClassVar[str] = "organization.updated"
    organization: OrganizationSnapshot
    changed: list[str] = []
    """The settings that changed (``time_zone``, ``locale``, ``auto_close_after_days``)."""


ORGANIZATION_EVENTS: tuple[type[Event], ...] = (OrganizationCreated, OrganizationUpdated)
