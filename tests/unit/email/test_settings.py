"""Email settings: EMAIL_* variables, provider choice, secrets refused or hidden."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import SecretStr

from insightdesk.email.providers.factory import make_provider
from insightdesk.email.providers.file_sink import FileSinkProvider
from insightdesk.email.providers.resend import ResendProvider
from insightdesk.email.providers.smtp import SmtpProvider
from insightdesk.email.settings import EmailSettings
from insightdesk.shared.errors import ConfigurationError


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("EMAIL_", "INSIGHTDESK_", "OTEL_")) or name == "DATABASE_URL":
            monkeypatch.delenv(name)


def test_defaults_are_for_development_with_the_file_sink() -> None:
    settings = EmailSettings()
    assert settings.environment == "development"
    assert settings.provider == "file"
    assert (settings.http_host, settings.http_port) == ("127.0.0.1", 8001)
    assert isinstance(make_provider(settings), FileSinkProvider)
    assert settings.spans_file is None


def test_variables_use_the_email_prefix_and_email_from(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("EMAIL_HTTP_PORT", "9001")
    monkeypatch.setenv("EMAIL_FROM", "Desk <desk@example.com>")
    monkeypatch.setenv("EMAIL_OUTBOX_DIR", str(tmp_path))
    monkeypatch.setenv("EMAIL_WORKER_CONCURRENCY", "3")
    monkeypatch.setenv("INSIGHTDESK_SPANS_DIR", str(tmp_path / "spans"))
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@db/app")
    settings = EmailSettings()
    assert settings.http_port == 9001
    assert settings.from_address == "Desk <desk@example.com>"
    assert settings.outbox_dir == tmp_path
    assert settings.worker_concurrency == 3
    assert settings.spans_file == tmp_path / "spans" / "email.jsonl"
    assert settings.database_url == "postgresql://u@db/app"


def test_smtp_provider_is_built_from_smtp_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMAIL_PROVIDER", "smtp")
    monkeypatch.setenv("EMAIL_SMTP_HOST", "mail.example.com")
    monkeypatch.setenv("EMAIL_SMTP_PORT", "587")
    monkeypatch.setenv("EMAIL_SMTP_USERNAME", "desk")
    monkeypatch.setenv("EMAIL_SMTP_PASSWORD", "s3cr3t-smtp-password")
    provider = make_provider(EmailSettings())
    assert isinstance(provider, SmtpProvider)
    assert (provider.host, provider.port, provider.starttls) == ("mail.example.com", 587, True)
    assert "s3cr3t-smtp-password" not in repr(provider)


def test_resend_needs_an_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMAIL_PROVIDER", "resend")
    with pytest.raises(ConfigurationError, match="EMAIL_RESEND_API_KEY"):
        EmailSettings()


def test_a_placeholder_api_key_is_refused_outside_development(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EMAIL_PROVIDER", "resend")
    monkeypatch.setenv("EMAIL_RESEND_API_KEY", "change-me")
    assert EmailSettings().resend_api_key is not None  # development tolerates it
    monkeypatch.setenv("INSIGHTDESK_ENV", "production")
    with pytest.raises(ConfigurationError, match="EMAIL_RESEND_API_KEY"):
        EmailSettings()


def test_the_api_key_is_secret_in_settings_and_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INSIGHTDESK_ENV", "production")
    monkeypatch.setenv("EMAIL_PROVIDER", "resend")
    monkeypatch.setenv("EMAIL_RESEND_API_KEY", "re_real_key_9876")
    settings = EmailSettings()
    assert isinstance(settings.resend_api_key, SecretStr)
    assert "re_real_key_9876" not in repr(settings) and "re_real_key_9876" not in str(settings)
    provider = make_provider(settings)
    assert isinstance(provider, ResendProvider)
    assert "re_real_key_9876" not in repr(provider)
