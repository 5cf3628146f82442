"""Settings of the operations console (prefix ``CONSOLE_``), built once by whoever serves it."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from insightdesk.shared.errors import ConfigurationError
from insightdesk.shared.settings import ServiceSettings

MIN_TOKEN_LENGTH = 16


class ConsoleSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CONSOLE_", extra="ignore", frozen=True)

    token: SecretStr | None = None
    """The operator token: ``Authorization: Bearer <token>`` for the API, typed once into the
    login form for the pages. Unset, the console refuses to start."""
    cookie_secure: bool = True
    """Send the session cookie over HTTPS only (turn off for plain-HTTP local runs)."""
    session_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    http_port: int = Field(default=8090, ge=0, le=65535)

    def operator_token(self) -> str:
        """The token, refused when missing, a placeholder, or too short to resist guessing."""
        self.check_secret("CONSOLE_TOKEN", self.token)
        if self.token is None:
            raise ConfigurationError(
                "CONSOLE_TOKEN is not set: the console needs an operator token"
            )
        value = self.token.get_secret_value()
        if len(value) < MIN_TOKEN_LENGTH:
            raise ConfigurationError(
                f"CONSOLE_TOKEN must be at least {MIN_TOKEN_LENGTH} characters long"
            )
        return value
