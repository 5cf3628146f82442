"""Operator authentication for the console.

* API: ``Authorization: Bearer <token>`` (the token from :class:`ConsoleSettings`).
* Pages: a login form that takes the token once and sets an HttpOnly, SameSite=Strict session
  cookie. The cookie holds ``<expiry>.<nonce>.<mac>``, where the MAC (HMAC-SHA256 keyed by the
  token) proves the server issued it; the token itself never leaves the server. Changing the
  token logs every session out.
* CSRF: every form POST carries ``csrf_token``, an HMAC of the session nonce (the login form a
  double-submit nonce); a POST without a valid one is refused with 403. Page scripts that call
  the API with the cookie send the same value in ``X-CSRF-Token``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from fastapi import Request

SESSION_COOKIE = "insightdesk_console"
LOGIN_COOKIE = "insightdesk_console_login"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


class NotAuthenticated(Exception):
    """No valid operator credentials on the request."""


class CsrfRejected(Exception):
    """A state-changing request without a valid CSRF token."""


@dataclass(frozen=True, slots=True)
class Session:
    nonce: str
    expires: int


class OperatorAuth:
    def __init__(self, token: str, *, session_seconds: float, cookie_secure: bool) -> None:
        self._key = hashlib.sha256(b"insightdesk-console:" + token.encode()).digest()
        self._token = token.encode()
        self.session_seconds = session_seconds
        self.cookie_secure = cookie_secure

    def _mac(self, purpose: str, value: str) -> str:
        return hmac.new(self._key, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()

    # ------------------------------------------------------------------ token

    def token_matches(self, candidate: str) -> bool:
        return hmac.compare_digest(candidate.encode(), self._token)

    def bearer_ok(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        return scheme.lower() == "bearer" and bool(value) and self.token_matches(value.strip())

    # ------------------------------------------------------------------ sessions

    def new_session(self) -> tuple[str, Session]:
        expires = int(time.time() + self.session_seconds)
        nonce = secrets.token_urlsafe(18)
        body = f"{expires}.{nonce}"
        return f"{body}.{self._mac('session', body)}", Session(nonce, expires)

    def session(self, request: Request) -> Session | None:
        raw = request.cookies.get(SESSION_COOKIE, "")
        expires, _, rest = raw.partition(".")
        nonce, _, mac = rest.partition(".")
        if not (expires.isdigit() and nonce and mac):
            return None
        if not hmac.compare_digest(mac, self._mac("session", f"{expires}.{nonce}")):
            return None
        if int(expires) < time.time():
            return None
        return Session(nonce, int(expires))

    # ------------------------------------------------------------------ CSRF

    def csrf_token(self, session: Session) -> str:
        return self._mac("csrf", session.nonce)

    def check_csrf(self, session: Session, candidate: str | None) -> None:
        if not candidate or not hmac.compare_digest(candidate, self.csrf_token(session)):
            raise CsrfRejected("missing or wrong CSRF token")

    def login_nonce(self) -> str:
        return secrets.token_urlsafe(18)

    def login_csrf(self, nonce: str) -> str:
        return self._mac("login", nonce)

    def check_login_csrf(self, request: Request, candidate: str | None) -> None:
        nonce = request.cookies.get(LOGIN_COOKIE, "")
        if not nonce or not candidate or not hmac.compare_digest(candidate, self.login_csrf(nonce)):
            raise CsrfRejected("missing or wrong CSRF token on the login form")
