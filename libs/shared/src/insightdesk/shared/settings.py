"""Settings shared by every service: one pydantic-settings class per service derives from
:class:`ServiceSettings`, is built once in the service's composition root and passed down.

``DATABASE_URL`` is read without the service prefix (all services share one database); the rest
use the service's prefix (``EMAIL_``, ``TICKETS_``...). Secrets are ``SecretStr`` so they never
appear in logs or reprs, and placeholder secrets are refused outside development.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from insightdesk.shared.errors import ConfigurationError

PLACEHOLDER_SECRETS = frozenset({"", "change-me", "changeme", "secret", "dev", "development"})


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    environment: Literal["development", "test", "production"] = Field(
        default="development", validation_alias=AliasChoices("INSIGHTDESK_ENV", "environment")
    )
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "database_url")
    )
    queue_schema: str = "queue"
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=0, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    worker_concurrency: int = Field(default=10, ge=1, le=1000)
    shutdown_timeout: float = Field(default=20.0, ge=0)
    otlp_endpoint: str | None = Field(
        default=None,
        validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "otlp_endpoint"),
    )
    """OTLP/HTTP traces endpoint (the standard OpenTelemetry variable), e.g.
    http://otel-collector:4318/v1/traces."""
    spans_dir: Path | None = Field(
        default=None, validation_alias=AliasChoices("INSIGHTDESK_SPANS_DIR", "spans_dir")
    )
    """When set, spans also go to ``<spans_dir>/<service>.jsonl`` (local runs, e2e tests)."""

    @model_validator(mode="after")
    def _database_url_is_libpq(self) -> ServiceSettings:
        if self.database_url and self.database_url.startswith("postgresql+"):
            raise ValueError("DATABASE_URL must be a plain libpq URI (postgresql://...)")
        return self

    def require_database_url(self) -> str:
        if not self.database_url:
            raise ConfigurationError("DATABASE_URL is not set")
        return self.database_url

    def check_secret(self, name: str, value: SecretStr | None) -> None:
        """Refuse a missing or placeholder secret outside development."""
        if self.environment == "development":
            return
        if value is None or value.get_secret_value().strip().lower() in PLACEHOLDER_SECRETS:
            raise ConfigurationError(f"{name} must be set to a real secret in {self.environment}")
