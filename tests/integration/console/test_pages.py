"""The dashboard pages over HTTP (no browser): login flow, every page renders, 404s, CSRF."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from insightdesk.shared.queue import CronScheduler, QueueClient, QueueOptions
from tests.integration.console.conftest import TOKEN


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


@pytest.fixture
async def browser_like(console_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=console_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as http:
        login = await http.get("/login")
        response = await http.post("/login", data={"token": TOKEN, "csrf_token": _csrf(login.text)})
        assert response.status_code == 303
        yield http


async def test_pages_redirect_to_login_and_login_needs_its_csrf_token(
    console_app: FastAPI,
) -> None:
    transport = httpx.ASGITransport(app=console_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as http:
        page = await http.get("/")
        assert page.status_code == 303 and page.headers["location"] == "/login"
        no_csrf = await http.post("/login", data={"token": TOKEN})
        assert no_csrf.status_code == 403
        login = await http.get("/login")
        wrong = await http.post("/login", data={"token": "x", "csrf_token": _csrf(login.text)})
        assert wrong.status_code == 401 and "Wrong token" in wrong.text
        assert "insightdesk_console" not in http.cookies


async def test_every_page_renders(browser_like: httpx.AsyncClient, client: QueueClient) -> None:
    await client.create_queue("dead")
    await client.create_queue("email", QueueOptions(retry_limit=0, dead_letter="dead"))
    job_id = await client.send("email", {"ticket": 1})
    assert job_id is not None
    [job] = await client.claim("email", 1)
    await client.fail(job, RuntimeError("boom"))
    await CronScheduler(client).schedule("digest", "email", "0 * * * *")
    for path, needle in [
        ("/", 'data-queue="email"'),
        ("/queues/email", "Queue email"),
        ("/queues/email?state=failed&key=k&data=%7B%7D", "No jobs match"),
        (f"/jobs/{job_id}", "RuntimeError: boom"),
        ("/failed", str(job_id)),
        ("/failed?queue=dead", "Redrive selected"),
        ("/schedules", "digest"),
    ]:
        response = await browser_like.get(path)
        assert response.status_code == 200, path
        assert needle in response.text, path


async def test_unknown_things_are_404_and_bad_filters_422(
    browser_like: httpx.AsyncClient, client: QueueClient
) -> None:
    await client.create_queue("email")
    assert (await browser_like.get(f"/jobs/{uuid.uuid4()}")).status_code == 404
    assert (await browser_like.get("/queues/nope")).status_code == 404
    assert (await browser_like.get("/failed?queue=nope")).status_code == 404
    assert (await browser_like.get("/queues/email?data=%5B1%5D")).status_code == 422
    assert (await browser_like.get("/queues/email?state=bogus")).status_code == 422


async def test_page_actions_need_csrf_and_report_counts(
    browser_like: httpx.AsyncClient, client: QueueClient
) -> None:
    await client.create_queue("email", QueueOptions(retry_limit=0))
    ids = [i for i in await client.send_many("email", [{}, {}]) if i]
    for job in await client.claim("email", 2):
        await client.fail(job, RuntimeError("boom"))
    page = await browser_like.get("/failed")
    csrf = _csrf(page.text)
    form = [("action", "retry"), *(("ids", str(i)) for i in ids)]
    assert (await browser_like.post("/failed", data=dict(form[:2]))).status_code == 403
    done = await browser_like.post(
        "/failed",
        content=httpx.QueryParams([*form, ("csrf_token", csrf)]).__str__(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert done.status_code == 303
    assert "2+of+2+job%28s%29+retried" in done.headers["location"]
    bad = await browser_like.post(
        "/failed", data={"action": "retry", "ids": "nope", "csrf_token": csrf}
    )
    assert bad.status_code == 422
    # The API called with the page's cookie needs the CSRF header on state changes.
    assert (await browser_like.post("/api/queues/email/pause")).status_code == 403
    ok = await browser_like.post("/api/queues/email/pause", headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 204
    logout = await browser_like.post("/logout", data={"csrf_token": csrf})
    assert logout.status_code == 303
    assert (await browser_like.get("/")).status_code == 303
