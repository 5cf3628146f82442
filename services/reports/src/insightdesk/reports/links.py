"""Signed download links: a token names a stored file and when the link expires, and carries an
HMAC-SHA256 over both, so nobody can point it at another file or stretch its life.

``<payload>.<signature>``, both base64url without padding; the payload is compact JSON
(``k`` key, ``f`` file name, ``t`` content type, ``e`` expiry in Unix seconds).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from insightdesk.shared.errors import InsightDeskError

MAX_TTL = timedelta(days=7)


class LinkError(InsightDeskError):
    """A download token that cannot be honoured."""


class TamperedLink(LinkError):
    """Malformed, or the signature does not match (403)."""


class ExpiredLink(LinkError):
    """Genuine but past its expiry (410)."""


@dataclass(frozen=True, slots=True)
class Download:
    key: str
    filename: str
    content_type: str
    expires_at: datetime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: bytes, payload: str) -> str:
    return _b64(hmac.new(secret, payload.encode("ascii"), hashlib.sha256).digest())


def sign(secret: bytes, download: Download) -> str:
    body = {
        "k": download.key,
        "f": download.filename,
        "t": download.content_type,
        "e": int(download.expires_at.timestamp()),
    }
    payload = _b64(json.dumps(body, separators=(",", ":"), sort_keys=True).encode())
    return f"{payload}.{_sign(secret, payload)}"


def verify(secret: bytes, token: str, now: datetime) -> Download:
    """The download ``token`` grants; :class:`TamperedLink` or :class:`ExpiredLink` otherwise."""
    payload, dot, signature = token.partition(".")
    if not dot or not hmac.compare_digest(_sign(secret, payload), signature):
        raise TamperedLink("the download link is not valid")
    try:
        body = json.loads(_unb64(payload))
        download = Download(
            key=str(body["k"]),
            filename=str(body["f"]),
            content_type=str(body["t"]),
            expires_at=datetime.fromtimestamp(int(body["e"]), UTC),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise TamperedLink("the download link is not valid") from exc
    if now >= download.expires_at:
        raise ExpiredLink(f"the download link expired at {download.expires_at.isoformat()}")
    return download


def link_ttl(hours: int | None, default_hours: int) -> timedelta:
    """The life of a link: as asked, else the default, never more than seven days."""
    ttl = timedelta(hours=hours if hours is not None else default_hours)
    return min(max(ttl, timedelta(hours=1)), MAX_TTL)
