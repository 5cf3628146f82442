"""The dashboard in a real browser: log in, read the overview, a failed job's error, retry it,
pause and resume a queue under a running worker, bulk-redrive dead letters; wrong token and a
form POST without its CSRF token are refused."""

from __future__ import annotations

import asyncio
import os
import random
import re
import time
import uuid
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from insightdesk.shared.queue import Job, JobState, QueueClient, QueueOptions
from insightdesk.shared.queue.control import QueueControl
from tests.browser.conftest import TOKEN
from tests.integration.helpers import wait_for_state

SCREENSHOTS = os.environ.get("CONSOLE_SCREENSHOTS")  # a folder: save the docs' screenshots


async def _log_in(browser: Browser, url: str) -> Page:
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await page.goto(f"{url}/login")
    await page.fill("input[name=token]", TOKEN)
    await page.click("button[type=submit]")
    await expect(page.locator("h1")).to_have_text("Queues")
    return page


async def _failing_job(client: QueueClient, queue: str) -> uuid.UUID:
    job_id = await client.send(queue, {"ticket": 42})
    assert job_id is not None
    [job] = await client.claim(queue, 1)
    try:
        raise ValueError("template 'welcome' is missing")
    except ValueError as exc:
        await client.fail(job, exc)
    return job_id


async def test_wrong_token_is_refused_and_the_right_one_logs_in(
    browser: Browser, console_url: str
) -> None:
    page = await browser.new_page()
    response = await page.goto(f"{console_url}/")
    assert response is not None and page.url.endswith("/login")
    await page.fill("input[name=token]", "not-the-token")
    await page.click("button[type=submit]")
    await expect(page.get_by_role("alert")).to_have_text("Wrong token.")
    await page.fill("input[name=token]", TOKEN)
    await page.click("button[type=submit]")
    await expect(page.locator("h1")).to_have_text("Queues")
    cookies = {c["name"]: c for c in await page.context.cookies()}
    session = cookies["insightdesk_console"]
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    assert TOKEN not in session["value"]


async def test_overview_shows_the_queue_counts_live(
    browser: Browser, console_url: str, client: QueueClient
) -> None:
    await client.create_queue("email", QueueOptions(retry_limit=0))
    await client.send_many("email", [{"n": n} for n in range(3)])
    await _failing_job(client, "email")
    page = await _log_in(browser, console_url)
    row = page.locator('#queues tr[data-queue="email"]')
    await expect(row.locator('[data-field="ready"]')).to_have_text("3")
    await expect(row.locator('[data-field="failed"]')).to_have_text("1")
    await expect(row.locator('[data-field="active"]')).to_have_text("0")
    await client.send("email", {"n": 4})  # the page updates itself, no reload
    await expect(row.locator('[data-field="ready"]')).to_have_text("4")


async def test_failed_job_error_then_retry_until_it_completes(
    browser: Browser, console_url: str, client: QueueClient
) -> None:
    await client.create_queue("email", QueueOptions(retry_limit=0))
    job_id = await _failing_job(client, "email")
    page = await _log_in(browser, console_url)
    await page.click("text=Failed & dead letters")
    await page.click(f"text={job_id}")
    await expect(page.locator("#job-state")).to_have_text("failed")
    errors = page.locator("#job-errors")
    await expect(errors).to_contain_text("ValueError: template 'welcome' is missing")
    await expect(errors.locator("pre.stack")).to_contain_text("Traceback")
    if SCREENSHOTS:
        await page.screenshot(path=str(Path(SCREENSHOTS) / "console-job.png"), full_page=True)

    async def handle(job: Job) -> dict[str, str]:
        return {"sent": "ok"}

    await client.work("email", handle)
    await page.click("#job-retry")
    await expect(page.locator(".flash")).to_have_text("1 job retried")
    await expect(page.locator("#job-state")).to_have_text("completed", timeout=15_000)
    await expect(page.locator("#job-output")).to_contain_text('"sent": "ok"')


async def test_pause_from_the_page_stops_a_running_worker_and_resume_restarts_it(
    browser: Browser, console_url: str, client: QueueClient
) -> None:
    await client.create_queue("sla-check")
    handled: list[int] = []

    async def handle(job: Job) -> None:
        handled.append(job.data["n"])

    worker = await client.work("sla-check", handle, poll_interval=30)
    page = await _log_in(browser, console_url)
    await page.click("text=sla-check")
    await page.click("#pause-toggle")
    await expect(page.locator("#queue-state")).to_have_text("paused")
    job_id = await client.send("sla-check", {"n": 1})
    assert job_id is not None
    # Paused: the worker is woken by the send's NOTIFY and claims nothing.
    await page.reload()
    await expect(page.locator('#queue-counts [data-field="ready"]')).to_have_text("1")
    assert worker.stats.claimed == 0 and handled == []
    await page.click("#pause-toggle")  # now "Resume"
    await expect(page.locator("#queue-state")).to_have_text("running")
    await wait_for_state(client, job_id, JobState.COMPLETED, timeout=10)
    assert handled == [1]
    await expect(page.locator('#queue-counts [data-field="completed"]')).to_have_text("1")


async def test_bulk_redrive_of_a_dead_letter_queue(
    browser: Browser, console_url: str, client: QueueClient
) -> None:
    await client.create_queue("email-dead")
    await client.create_queue("email", QueueOptions(retry_limit=0, dead_letter="email-dead"))
    for _ in range(3):
        await _failing_job(client, "email")
    page = await _log_in(browser, console_url)
    if SCREENSHOTS:
        await page.wait_for_timeout(2500)
        await page.screenshot(path=str(Path(SCREENSHOTS) / "console-overview.png"), full_page=True)
    await page.click("text=Failed & dead letters")
    await page.click("a.dlq")
    await expect(page.locator("#failed-jobs input.pick")).to_have_count(3)
    dialogs: list[str] = []

    async def accept(dialog: object) -> None:
        dialogs.append(dialog.message)  # type: ignore[attr-defined]
        await dialog.accept()  # type: ignore[attr-defined]

    page.on("dialog", accept)
    await page.check("#select-all")
    await page.click("#bulk-redrive")
    await expect(page.locator(".flash")).to_have_text("3 of 3 job(s) redriven")
    assert dialogs == ["redrive 3 job(s)?"]
    stats = {s.name: s for s in await client.stats()}
    assert stats["email"].ready == 3 and stats["email-dead"].ready == 0


async def test_a_form_post_without_the_csrf_token_is_forbidden(
    browser: Browser, console_url: str, client: QueueClient
) -> None:
    await client.create_queue("email")
    page = await _log_in(browser, console_url)
    request = page.context.request  # carries the session cookie
    missing = await request.post(f"{console_url}/queues/email/pause", form={})
    assert missing.status == 403
    wrong = await request.post(f"{console_url}/queues/email/pause", form={"csrf_token": "forged"})
    assert wrong.status == 403
    control = QueueControl(client)
    assert not (await control.queues("email"))[0].paused
    csrf = await page.locator("body").get_attribute("data-csrf")
    assert csrf and re.fullmatch(r"[0-9a-f]{64}", csrf)
    good = await request.post(f"{console_url}/queues/email/pause", form={"csrf_token": csrf})
    assert good.status == 200  # followed the redirect to the queue page
    assert (await control.queues("email"))[0].paused


@pytest.mark.skipif(not SCREENSHOTS, reason="set CONSOLE_SCREENSHOTS=docs to refresh the docs")
async def test_overview_screenshot_under_a_real_workload(
    browser: Browser, console_url: str, client: QueueClient
) -> None:
    """Runs three queues for about 70 s (history snapshots every 10 s) and saves the overview."""
    assert SCREENSHOTS
    await client.create_queue("email-dead")
    await client.create_queue("email", QueueOptions(retry_limit=1, dead_letter="email-dead"))
    await client.create_queue("sla-check")
    await client.create_queue("reports")

    async def handle(job: Job) -> None:
        await asyncio.sleep(random.uniform(0.005, 0.05))
        if random.random() < 0.03:
            raise RuntimeError("provider timed out")

    for queue in ("email", "sla-check"):
        await client.work(queue, handle, concurrency=4)
    page = await _log_in(browser, console_url)
    deadline = time.monotonic() + 70
    while time.monotonic() < deadline:
        await client.send_many("email", [{"to": f"u{n}@example.com"} for n in range(40)])
        await client.send_many("sla-check", [{"ticket": n} for n in range(25)])
        await client.send("reports", {"org": 7})
        await asyncio.sleep(1)
    await QueueControl(client).pause("reports")
    await page.wait_for_timeout(2500)
    await page.screenshot(path=str(Path(SCREENSHOTS) / "console-overview.png"), full_page=True)
