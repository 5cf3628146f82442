"""Settings of the reports service (``REPORTS_*`` environment variables), validated once."""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from insightdesk.shared.settings import ServiceSettings
from insightdesk.shared.storage import StorageSettings


class ReportsSettings(ServiceSettings, StorageSettings):
    model_config = SettingsConfigDict(env_prefix="REPORTS_", extra="ignore", frozen=True)

    http_port: int = Field(default=8005, ge=0, le=65535)
    db_pool_size: int = Field(default=6, ge=2, le=100)
    ready_timeout: float = Field(default=2.0, gt=0)
    digest_hour: int = Field(default=8, ge=0, le=23)
    """Local hour (in each organization's time zone) at which the daily digest goes out."""
    weekly_hour: int = Field(default=8, ge=0, le=23)
    """Local hour on Mondays at which the weekly report goes out."""
    skip_empty_digest: bool = True
    """No digest for a day without activity."""
    link_ttl_hours: int = Field(default=24, ge=1, le=168)
    """Default life of an export's download link (at most seven days)."""
    public_base_url: str = "http://127.0.0.1:8005"
    """Where users reach this service's ``/downloads/{token}`` (local storage)."""
    signing_key: SecretStr = SecretStr("dev-reports-signing-key")
    """HMAC key of download links; a real secret outside development."""
    export_concurrency: int = Field(default=2, ge=1, le=32)
    events_concurrency: int = Field(default=4, ge=1, le=64)

    @model_validator(mode="after")
    def _secret(self) -> ReportsSettings:
        if self.signing_key.get_secret_value() == "dev-reports-signing-key":
            self.check_secret("REPORTS_SIGNING_KEY", None)
        else:
            self.check_secret("REPORTS_SIGNING_KEY", self.signing_key)
        return self
