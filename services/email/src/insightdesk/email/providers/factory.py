"""Building the provider that ``EMAIL_PROVIDER`` names."""

from __future__ import annotations

from insightdesk.email.providers.base import EmailProvider
from insightdesk.email.providers.file_sink import FileSinkProvider
from insightdesk.email.providers.resend import ResendProvider
from insightdesk.email.providers.smtp import SmtpProvider
from insightdesk.email.settings import EmailSettings
from insightdesk.shared.errors import ConfigurationError


def make_provider(settings: EmailSettings) -> EmailProvider:
    """The provider ``EMAIL_PROVIDER`` names, configured from the other ``EMAIL_*`` settings."""
    if settings.provider == "file":
        return FileSinkProvider(settings.outbox_dir)
    if settings.provider == "smtp":
        return SmtpProvider(
            host=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
            tls=settings.smtp_tls,
            timeout=settings.smtp_timeout,
        )
    if settings.resend_api_key is None:  # the settings validator already refuses this
        raise ConfigurationError("EMAIL_RESEND_API_KEY is not set")
    return ResendProvider(
        api_key=settings.resend_api_key,
        base_url=settings.resend_base_url,
        timeout=settings.resend_timeout,
        default_retry_after=settings.rate_limit_default_delay,
    )
