"""Delivery through Resend's HTTP API (``POST /emails``) with httpx.

Each request carries an ``Idempotency-Key`` derived from the job's idempotency key, so when a
retry repeats a request Resend already accepted (a crash or timeout after its ``200``), Resend
answers with the first email's id instead of sending again (for 24 hours).

Answers and what the queue does with them:

* ``2xx``: delivered; the email id is the receipt;
* ``429``: rate limited, retried after ``retry-after`` seconds;
* ``409 concurrent_idempotent_requests``: the same key is in flight, retried shortly;
* ``5xx``, timeouts, connection errors: a failed attempt, retried with the queue's backoff;
* any other ``4xx``: the mail is refused for good (dead letter, with Resend's error).
"""

from __future__ import annotations

import base64
import logging
import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from pydantic import SecretStr

from insightdesk.email.errors import PermanentDeliveryError, TransientDeliveryError
from insightdesk.email.messages import DeliveryReceipt, OutgoingEmail, delivery_token

log = logging.getLogger(__name__)

USER_AGENT = "insightdesk-email/0.1"
CONCURRENT_REQUEST_DELAY = 2.0


def idempotency_header(idempotency_key: str) -> str:
    """The ``Idempotency-Key`` sent to Resend: fixed length, header-safe, under its 256 limit."""
    return f"insightdesk-email/{delivery_token(idempotency_key)}"


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds: a number of seconds or an HTTP date; None if unusable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _error_detail(response: httpx.Response) -> tuple[str, str]:
    """Resend's error ``name`` and ``message`` (its body is ``{statusCode, name, message}``)."""
    try:
        body: Any = response.json()
    except ValueError:
        return "", response.text[:500]
    if isinstance(body, dict):
        return str(body.get("name") or ""), str(body.get("message") or body)[:500]
    return "", str(body)[:500]


class ResendProvider:
    name = "resend"

    def __init__(
        self,
        *,
        api_key: SecretStr,
        base_url: str = "https://api.resend.com",
        timeout: float = 30.0,
        default_retry_after: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._api_key = api_key
        self.base_url = base_url
        self.default_retry_after = default_retry_after
        self._client = httpx.AsyncClient(
            base_url=base_url,
            timeout=timeout,
            transport=transport,
            headers={"User-Agent": USER_AGENT},
        )

    def __repr__(self) -> str:
        return f"ResendProvider(base_url={self.base_url!r})"

    @staticmethod
    def payload(message: OutgoingEmail) -> dict[str, Any]:
        """The JSON body of ``POST /emails``. Resend sets the ``Message-ID`` itself."""
        body: dict[str, Any] = {
            "from": message.sender,
            "to": [message.to],
            "subject": message.subject,
            "html": message.html,
            "text": message.text,
            "headers": dict(message.headers),
        }
        if message.files:
            body["attachments"] = [
                {
                    "filename": f.filename,
                    "content": base64.b64encode(f.data).decode("ascii"),
                    "content_type": f.content_type,
                    **({"content_id": f.content_id} if f.inline else {}),
                }
                for f in message.files
            ]
        return body

    async def send(self, message: OutgoingEmail, idempotency_key: str) -> DeliveryReceipt:
        headers = {
            "Authorization": f"Bearer {self._api_key.get_secret_value()}",
            "Idempotency-Key": idempotency_header(idempotency_key),
        }
        try:
            response = await self._client.post(
                "/emails", json=self.payload(message), headers=headers
            )
        except httpx.HTTPError as exc:  # timeouts, connection errors, protocol errors
            raise TransientDeliveryError(f"Resend request failed: {exc!r}") from exc
        status = response.status_code
        if response.is_success:
            try:
                email_id = response.json().get("id")
            except (ValueError, AttributeError):
                email_id = None
            log.debug("Resend accepted %s as %s", message.message_id, email_id)
            return DeliveryReceipt(provider=self.name, provider_message_id=email_id)
        name, detail = _error_detail(response)
        described = f"Resend answered {status}{f' {name}' if name else ''}: {detail}"
        if status == 429:
            delay = retry_after_seconds(response.headers.get("retry-after"))
            raise TransientDeliveryError(
                described, retry_after=self.default_retry_after if delay is None else delay
            )
        if status == 409 and name == "concurrent_idempotent_requests":
            raise TransientDeliveryError(described, retry_after=CONCURRENT_REQUEST_DELAY)
        if status >= 500:
            raise TransientDeliveryError(described)
        raise PermanentDeliveryError(described)

    async def aclose(self) -> None:
        await self._client.aclose()
