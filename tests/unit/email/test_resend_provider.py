"""The Resend provider against ``httpx.MockTransport``: what it sends, how it reads answers."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from pydantic import SecretStr

from insightdesk.email.errors import PermanentDeliveryError, TransientDeliveryError
from insightdesk.email.messages import OutgoingEmail, delivery_token
from insightdesk.email.providers.resend import (
    ResendProvider,
    idempotency_header,
    retry_after_seconds,
)

API_KEY = "re_live_0123456789abcdef"
MAIL = OutgoingEmail(
    sender="InsightDesk <no-reply@desk.example>",
    to="ada@example.com",
    subject="Hello",
    text="text part\n",
    html="<p>html part</p>",
    message_id="<m1@desk.example>",
    date=datetime(2025, 3, 1, tzinfo=UTC),
    headers={"X-InsightDesk-Idempotency-Key": "user.registered/1", "X-Trace-Id": "ab" * 16},
)


def provider_answering(
    answer: Callable[[httpx.Request], httpx.Response], seen: list[httpx.Request]
) -> ResendProvider:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer(request)

    return ResendProvider(
        api_key=SecretStr(API_KEY),
        base_url="https://api.resend.test",
        default_retry_after=30,
        transport=httpx.MockTransport(handler),
    )


async def test_success_posts_the_mail_with_auth_and_idempotency_key() -> None:
    seen: list[httpx.Request] = []
    provider = provider_answering(lambda r: httpx.Response(200, json={"id": "re-123"}), seen)
    receipt = await provider.send(MAIL, "user.registered/1")
    await provider.aclose()
    assert receipt.provider == "resend" and receipt.provider_message_id == "re-123"
    [request] = seen
    assert request.method == "POST" and request.url == "https://api.resend.test/emails"
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert request.headers["Idempotency-Key"] == idempotency_header("user.registered/1")
    assert delivery_token("user.registered/1") in request.headers["Idempotency-Key"]
    assert len(request.headers["Idempotency-Key"]) <= 256
    body = json.loads(request.content)
    assert body["from"] == MAIL.sender and body["to"] == ["ada@example.com"]
    assert body["subject"] == "Hello"
    assert body["html"] == "<p>html part</p>" and body["text"] == "text part\n"
    assert body["headers"]["X-InsightDesk-Idempotency-Key"] == "user.registered/1"
    assert body["headers"]["X-Trace-Id"] == "ab" * 16


async def test_every_attempt_of_one_mail_sends_the_same_idempotency_key() -> None:
    seen: list[httpx.Request] = []
    provider = provider_answering(lambda r: httpx.Response(200, json={"id": "re-1"}), seen)
    await provider.send(MAIL, "k-1")
    await provider.send(MAIL, "k-1")
    await provider.send(MAIL, "k-2")
    keys = [r.headers["Idempotency-Key"] for r in seen]
    assert keys[0] == keys[1] != keys[2]


async def test_429_asks_to_retry_after_the_given_delay() -> None:
    provider = provider_answering(
        lambda r: httpx.Response(
            429,
            headers={"retry-after": "17"},
            json={"statusCode": 429, "name": "rate_limit_exceeded", "message": "Too many"},
        ),
        [],
    )
    with pytest.raises(TransientDeliveryError, match="rate_limit_exceeded") as info:
        await provider.send(MAIL, "k")
    assert info.value.retry_after == 17.0


async def test_429_without_retry_after_uses_the_default_delay() -> None:
    provider = provider_answering(lambda r: httpx.Response(429, text="slow down"), [])
    with pytest.raises(TransientDeliveryError) as info:
        await provider.send(MAIL, "k")
    assert info.value.retry_after == 30.0


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_5xx_is_an_ordinary_failed_attempt(status: int) -> None:
    provider = provider_answering(lambda r: httpx.Response(status, json={"message": "oops"}), [])
    with pytest.raises(TransientDeliveryError) as info:
        await provider.send(MAIL, "k")
    assert info.value.retry_after is None  # the queue's backoff decides


async def test_a_network_error_is_an_ordinary_failed_attempt() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    provider = provider_answering(refuse, [])
    with pytest.raises(TransientDeliveryError) as info:
        await provider.send(MAIL, "k")
    assert info.value.retry_after is None


@pytest.mark.parametrize(
    ("status", "name"), [(422, "validation_error"), (403, "invalid_from_address"), (400, "")]
)
async def test_other_4xx_is_permanent_with_the_providers_error(status: int, name: str) -> None:
    provider = provider_answering(
        lambda r: httpx.Response(
            status, json={"statusCode": status, "name": name, "message": "The `to` is invalid"}
        ),
        [],
    )
    with pytest.raises(PermanentDeliveryError, match="The `to` is invalid") as info:
        await provider.send(MAIL, "k")
    assert str(status) in str(info.value)


async def test_a_concurrent_request_with_the_same_key_is_retried_shortly() -> None:
    provider = provider_answering(
        lambda r: httpx.Response(
            409, json={"name": "concurrent_idempotent_requests", "message": "in progress"}
        ),
        [],
    )
    with pytest.raises(TransientDeliveryError) as info:
        await provider.send(MAIL, "k")
    assert info.value.retry_after is not None and info.value.retry_after <= 5


async def test_the_api_key_never_shows_in_repr_errors_or_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    answers = iter(
        [
            httpx.Response(200, json={"id": "re-1"}),
            httpx.Response(401, json={"name": "missing_api_key", "message": "bad key"}),
        ]
    )
    provider = provider_answering(lambda r: next(answers), [])
    await provider.send(MAIL, "k")
    with pytest.raises(PermanentDeliveryError) as info:
        await provider.send(MAIL, "k")
    assert API_KEY not in repr(provider) and API_KEY not in str(provider)
    assert API_KEY not in str(info.value) and API_KEY not in repr(info.value)
    assert caplog.records  # something was logged, and none of it holds the key
    assert API_KEY not in caplog.text


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    assert retry_after_seconds("2.5", now=now) == 2.5
    assert (
        retry_after_seconds(format_datetime(now + timedelta(seconds=90), usegmt=True), now=now)
        == 90
    )
    assert retry_after_seconds("-3", now=now) == 0.0
    assert retry_after_seconds("soon", now=now) is None
    assert retry_after_seconds(None) is None
