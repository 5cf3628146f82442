"""Settings of the SLA service (``SLA_*`` environment variables), validated once at start-up."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from insightdesk.shared.settings import ServiceSettings


class SlaSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SLA_", extra="ignore", frozen=True)

    http_port: int = Field(default=8004, ge=0, le=65535)
    db_pool_size: int = Field(default=5, ge=1, le=100)
    """Connections of the service's own pool (schema ``sla``, and the jobs and events it writes
    in the same transactions); the broker keeps its own pool for claiming."""
    event_concurrency: int = Field(default=4, ge=1, le=100)
    """Handlers at once per event queue (ticket events, configuration changes)."""
    check_concurrency: int = Field(default=10, ge=1, le=200)
    """Deadline, warning and escalation checks at once (queue ``sla-check``)."""
    scan_limit: int = Field(default=500, ge=1, le=100_000)
    """Overdue checks the safety-net scan settles per run."""
    ready_timeout: float = Field(default=2.0, gt=0)
