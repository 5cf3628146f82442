"""Settings of the email service (``EMAIL_*`` environment variables), validated once at start-up.

Attachments named in a ``SendEmail`` are read from the shared object storage configured by
``EMAIL_STORAGE_*`` (see :class:`insightdesk.shared.storage.StorageSettings`; the same store the
reports service writes to). ``EMAIL_PROVIDER`` picks the delivery provider: ``file`` (default;
every mail an ``.eml`` file in ``EMAIL_OUTBOX_DIR``), ``smtp`` (``EMAIL_SMTP_*``) or ``resend``
(``EMAIL_RESEND_*``). Secrets are ``SecretStr`` and a placeholder API key is refused outside
development.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from insightdesk.shared.errors import ConfigurationError
from insightdesk.shared.settings import ServiceSettings
from insightdesk.shared.storage import StorageSettings

ProviderName = Literal["file", "smtp", "resend"]


class EmailSettings(ServiceSettings, StorageSettings):
    model_config = SettingsConfigDict(env_prefix="EMAIL_", extra="ignore", frozen=True)

    http_port: int = Field(default=8001, ge=0, le=65535)

    provider: ProviderName = "file"
    from_address: str = Field(
        default="InsightDesk <no-reply@insightdesk.local>",
        validation_alias=AliasChoices("EMAIL_FROM", "from_address"),
    )
    """The From header of every mail (``EMAIL_FROM``)."""
    message_id_domain: str | None = None
    """Right-hand side of generated Message-IDs; default: the domain of ``EMAIL_FROM``."""
    default_locale: str = "en"
    send_lease_seconds: float = Field(default=120.0, gt=0)
    """How long a delivery attempt holds its idempotency key before another job may take over;
    longer than the slowest provider call."""

    outbox_dir: Path = Path(".local/mail")

    db_pool_size: int = Field(default=5, ge=1, le=100)
    """Connections of the service's own pool (the delivery log in schema ``email``); the
    broker keeps its own pool for the queue."""
    delivery_log_retention_days: int = Field(default=90, ge=1)
    """The nightly cleanup purges delivery-log rows older than this."""
    cleanup_batch_size: int = Field(default=5000, ge=1, le=100_000)
    cleanup_max_seconds: float = Field(default=60.0, gt=0)
    ready_timeout: float = Field(default=2.0, gt=0)
    """How long ``/readyz`` waits for the database and the broker."""

    smtp_host: str = "localhost"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True
    smtp_tls: bool = False
    """Implicit TLS (SMTPS, usually port 465); STARTTLS is then not used."""
    smtp_timeout: float = Field(default=30.0, gt=0)

    resend_api_key: SecretStr | None = None
    resend_base_url: str = "https://api.resend.com"
    resend_timeout: float = Field(default=30.0, gt=0)
    rate_limit_default_delay: float = Field(default=30.0, ge=0)
    """Retry delay after a 429 that carries no usable ``retry-after``."""

    @model_validator(mode="after")
    def _provider_is_usable(self) -> EmailSettings:
        if self.provider == "resend":
            if self.resend_api_key is None:
                raise ConfigurationError(
                    "EMAIL_RESEND_API_KEY is required for EMAIL_PROVIDER=resend"
                )
            self.check_secret("EMAIL_RESEND_API_KEY", self.resend_api_key)
        if self.provider == "smtp" and self.smtp_username is not None:
            self.check_secret("EMAIL_SMTP_PASSWORD", self.smtp_password)
        return self

    @property
    def spans_file(self) -> Path | None:
        """Where this service writes its spans (``$INSIGHTDESK_SPANS_DIR/email.jsonl``)."""
        return None if self.spans_dir is None else self.spans_dir / "email.jsonl"
