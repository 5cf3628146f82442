"""Fixtures for the console: the app over a real database, an authenticated HTTP client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from insightdesk.shared.ops import ConsoleSettings, create_console_app
from insightdesk.shared.queue import QueueClient

TOKEN = "operator-token-for-tests-0123456789"


def console_settings() -> ConsoleSettings:
    return ConsoleSettings(token=TOKEN, cookie_secure=False, environment="test")


@pytest.fixture
def console_app(client: QueueClient) -> FastAPI:
    return create_console_app(client, console_settings())


@pytest.fixture
async def api(console_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=console_app)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://console.test",
        headers={"Authorization": f"Bearer {TOKEN}"},
    ) as http:
        yield http
