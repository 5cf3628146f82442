"""SMTP delivery with aiosmtplib: one connection per mail (mail volume here is modest, and a
fresh connection never inherits a half-broken session).

SMTP has no idempotency key: a crash after the server accepted the mail (its ``250`` to
``DATA``) and before the delivery log recorded it means the retry sends the mail again. The
retry carries the same ``Message-ID``, so mail systems that deduplicate on it hide the copy.
"""

from __future__ import annotations

from email.utils import parseaddr

import aiosmtplib
from pydantic import SecretStr

from insightdesk.email.errors import PermanentDeliveryError, TransientDeliveryError
from insightdesk.email.messages import DeliveryReceipt, OutgoingEmail


class SmtpProvider:
    name = "smtp"

    def __init__(
        self,
        *,
        host: str,
        port: int,
        username: str | None = None,
        password: SecretStr | None = None,
        starttls: bool = True,
        tls: bool = False,
        timeout: float = 30.0,
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self._password = password
        self.starttls = starttls and not tls
        self.tls = tls
        self.timeout = timeout

    def __repr__(self) -> str:
        return (
            f"SmtpProvider(host={self.host!r}, port={self.port}, username={self.username!r}, "
            f"starttls={self.starttls}, tls={self.tls})"
        )

    async def send(self, message: OutgoingEmail, idempotency_key: str) -> DeliveryReceipt:
        mime = message.to_mime()
        sender = parseaddr(message.sender)[1] or message.sender
        try:
            await aiosmtplib.send(
                mime,
                sender=sender,
                recipients=[message.to],
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=(
                    self._password.get_secret_value() if self._password is not None else None
                ),
                use_tls=self.tls,
                start_tls=self.starttls,
                timeout=self.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            detail = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
            if any(code >= 500 for code in codes):
                raise PermanentDeliveryError(
                    f"SMTP server refused the recipient: {detail}"
                ) from exc
            raise TransientDeliveryError(f"SMTP server deferred the recipient: {detail}") from exc
        except aiosmtplib.SMTPAuthenticationError as exc:
            # our configuration, not the mail, is wrong: keep the mail until it is fixed
            raise TransientDeliveryError(f"SMTP authentication failed: {exc.code}") from exc
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code >= 500:
                raise PermanentDeliveryError(
                    f"SMTP server refused the mail: {exc.code} {exc.message}"
                ) from exc
            raise TransientDeliveryError(
                f"SMTP server deferred the mail: {exc.code} {exc.message}"
            ) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise TransientDeliveryError(f"SMTP delivery failed: {exc!r}") from exc
        return DeliveryReceipt(provider=self.name, provider_message_id=message.message_id)

    async def aclose(self) -> None:
        return None
