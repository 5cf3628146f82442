"""Operator auth of the console without I/O: session cookies are MACs that expire, CSRF tokens
belong to one session, placeholder and short tokens are refused outside development."""

from __future__ import annotations

import time

import pytest
from pydantic import SecretStr
from starlette.requests import Request

from insightdesk.shared.errors import ConfigurationError
from insightdesk.shared.ops.auth import SESSION_COOKIE, CsrfRejected, OperatorAuth
from insightdesk.shared.ops.settings import ConsoleSettings

TOKEN = "unit-test-operator-token-0001"


def _request(cookie: str | None = None, authorization: str | None = None) -> Request:
    headers = []
    if cookie is not None:
        headers.append((b"cookie", f"{SESSION_COOKIE}={cookie}".encode()))
    if authorization is not None:
        headers.append((b"authorization", authorization.encode()))
    return Request({"type": "http", "headers": headers, "method": "GET", "path": "/"})


def test_a_session_cookie_is_valid_until_tampered_or_expired() -> None:
    auth = OperatorAuth(TOKEN, session_seconds=60, cookie_secure=True)
    value, session = auth.new_session()
    assert TOKEN not in value
    assert auth.session(_request(value)) == session
    expires, nonce, mac = value.split(".")
    assert auth.session(_request(f"{expires}.{nonce}x.{mac}")) is None
    assert auth.session(_request(f"{int(expires) + 1000}.{nonce}.{mac}")) is None
    assert auth.session(_request("garbage")) is None
    other = OperatorAuth("another-operator-token-0002", session_seconds=60, cookie_secure=True)
    assert other.session(_request(value)) is None  # a new token logs every session out
    stale = OperatorAuth(TOKEN, session_seconds=-1, cookie_secure=True)
    old, _ = stale.new_session()
    assert auth.session(_request(old)) is None
    assert int(old.split(".")[0]) < time.time()


def test_csrf_tokens_belong_to_their_session() -> None:
    auth = OperatorAuth(TOKEN, session_seconds=60, cookie_secure=True)
    _, one = auth.new_session()
    _, two = auth.new_session()
    auth.check_csrf(one, auth.csrf_token(one))
    with pytest.raises(CsrfRejected):
        auth.check_csrf(one, auth.csrf_token(two))
    with pytest.raises(CsrfRejected):
        auth.check_csrf(one, None)


def test_bearer_header_must_carry_the_exact_token() -> None:
    auth = OperatorAuth(TOKEN, session_seconds=60, cookie_secure=True)
    assert auth.bearer_ok(_request(authorization=f"Bearer {TOKEN}"))
    assert not auth.bearer_ok(_request(authorization=f"Bearer {TOKEN}x"))
    assert not auth.bearer_ok(_request(authorization=f"Basic {TOKEN}"))
    assert not auth.bearer_ok(_request())


@pytest.mark.parametrize(
    ("token", "environment"),
    [(None, "development"), ("change-me", "production"), ("short", "development")],
)
def test_missing_placeholder_or_short_tokens_are_refused(
    token: str | None, environment: str
) -> None:
    settings = ConsoleSettings(
        token=SecretStr(token) if token else None,
        environment=environment,
    )
    with pytest.raises(ConfigurationError):
        settings.operator_token()
