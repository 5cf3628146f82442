"""Settings of the tickets service (``TICKETS_*`` environment variables), validated once at
start-up in the composition root and passed down."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from insightdesk.shared.settings import ServiceSettings


class TicketsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TICKETS_", extra="ignore", frozen=True)

    allow_bootstrap: bool = True
    """``POST /organizations`` (creates an organization and its first admin). Outside
    development it needs ``operator_token``; set ``TICKETS_ALLOW_BOOTSTRAP=false`` to switch it
    off altogether once the tenants exist."""
    operator_token: SecretStr | None = None
    """``TICKETS_OPERATOR_TOKEN``: outside development ``POST /organizations`` requires
    ``Authorization: Bearer <operator token>``; without one the route is not served there.
    Placeholder values are refused at start-up."""

    notify_window_seconds: float = Field(default=300.0, gt=0, le=86_400)
    """Ticket updates to one recipient are collected this long from the first one, then mailed
    together (``TICKETS_NOTIFY_WINDOW_SECONDS``)."""
    public_base_url: str | None = Field(default=None, pattern=r"^https?://[^\s]+$")
    """Where ticket links in mails point: ``<url>/tickets/<id>`` (``TICKETS_PUBLIC_BASE_URL``);
    unset: mails carry no link."""

    db_pool_size: int = Field(default=10, ge=1, le=200)
    """Connections of the SQLAlchemy engine (one per in-flight request)."""
    db_max_overflow: int = Field(default=5, ge=0, le=200)
    ready_timeout: float = Field(default=2.0, gt=0)
    """How long ``/readyz`` waits for the database and the broker."""

    worker_http_port: int = Field(default=8003, ge=0, le=65535)
    """Where the ``worker`` process serves /healthz, /readyz, /metrics."""
    worker_db_pool_size: int = Field(default=4, ge=1, le=100)
    """Connections of the worker's own pool (the ``tickets`` schema)."""
    auto_close_batch_size: int = Field(default=500, ge=1, le=10_000)
    auto_close_max_seconds: float = Field(default=600.0, gt=0)
    """Time budget of one auto-close run; what is left waits for the next run."""
    archive_after_days: int = Field(default=365, ge=1)
    """Cleanup archives tickets closed longer than this."""
    cleanup_batch_size: int = Field(default=1000, ge=1, le=100_000)
    cleanup_max_seconds: float = Field(default=60.0, gt=0)

    @property
    def spans_file(self) -> Path | None:
        """Where this service writes its spans (``$INSIGHTDESK_SPANS_DIR/tickets.jsonl``)."""
        return None if self.spans_dir is None else self.spans_dir / "tickets.jsonl"
