"""The scheduler against the real engine: reconciliation (write, change, retire, wait for a
missing queue), one job per slot with two replicas, the event relay, the HTTP API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pydantic import SecretStr

from insightdesk.scheduler.api import create_api
from insightdesk.scheduler.runtime import ACTIVE, WAITING, Scheduler
from insightdesk.scheduler.schedules import RELAY_QUEUE, ScheduleSpec
from insightdesk.shared.clock import FakeClock, SystemClock
from insightdesk.shared.queue import QueueClient

EVERY_SECOND = "* * * * * *"


def spec(name: str, **fields: object) -> ScheduleSpec:
    return ScheduleSpec.model_validate({"name": name, "cron": "0 * * * *", **fields})


@pytest.fixture
async def relay_ready(client: QueueClient) -> QueueClient:
    await client.ensure_queue(RELAY_QUEUE)
    return client


async def test_a_schedule_waits_for_its_queue_then_becomes_active(client: QueueClient) -> None:
    scheduler = Scheduler(client, [spec("digest", queue="reports")], clock=SystemClock())

    status = await scheduler.reconcile()
    assert status["digest"].state == WAITING and "'reports'" in status["digest"].detail
    assert await scheduler.cron.schedules() == []
    [listed] = await scheduler.listing()
    assert listed["state"] == "waiting" and listed["target"] == "queue:reports"

    await client.create_queue("reports")
    status = await scheduler.reconcile()
    assert status["digest"].state == ACTIVE
    [row] = await scheduler.cron.schedules()
    assert row["queue"] == "reports" and row["data"] == {"schedule": "digest"}


async def test_a_changed_schedule_keeps_its_last_slot_and_a_removed_one_retires(
    client: QueueClient,
) -> None:
    await client.create_queue("reports")
    first = Scheduler(
        client,
        [spec("digest", queue="reports"), spec("weekly", queue="reports")],
        clock=SystemClock(),
    )
    await first.reconcile()
    before = {r["name"]: r for r in await first.cron.schedules()}

    changed = spec("digest", queue="reports", cron="30 * * * *", timezone="Europe/Berlin")
    second = Scheduler(
        client, [changed, spec("weekly", queue="reports", enabled=False)], clock=SystemClock()
    )
    await second.reconcile()
    [row] = await second.cron.schedules()
    assert row["name"] == "digest" and row["cron"] == "30 * * * *"
    assert row["timezone"] == "Europe/Berlin"
    assert row["last_slot"] == before["digest"]["last_slot"]  # next slot: from where it was
    listing = {s["name"]: s for s in await second.listing()}
    assert listing["weekly"]["state"] == "disabled" and listing["weekly"]["next_slot"] is None
    assert listing["digest"]["next_slot"].minute == 30


async def test_two_replicas_fire_each_slot_of_a_schedule_once(client: QueueClient) -> None:
    await client.create_queue("ticks")
    every_second = [spec("tick", queue="ticks", cron=EVERY_SECOND, grace=5)]
    replicas = [Scheduler(client, every_second, clock=SystemClock()) for _ in range(2)]
    await asyncio.gather(*(r.reconcile() for r in replicas))
    deadline = datetime.now(UTC) + timedelta(seconds=3.5)
    while datetime.now(UTC) < deadline:
        await asyncio.gather(*(r.tick() for r in replicas))
        await asyncio.sleep(0.05)

    jobs = await client.find_jobs("ticks")
    slots = [j.headers["slot"] for j in jobs if j.headers]
    assert len(slots) >= 3
    assert len(slots) == len(set(slots)) == len(jobs)


async def test_a_fired_event_schedule_is_published_once_to_every_subscriber(
    relay_ready: QueueClient,
) -> None:
    client = relay_ready
    for queue in ("tickets-maintenance", "email-maintenance"):
        await client.create_queue(queue)
        await client.subscribe("maintenance.cleanup_requested", queue)
    cleanup = spec("cleanup", event="maintenance.cleanup_requested", data={"scope": "all"})
    scheduler = Scheduler(client, [cleanup], clock=FakeClock(datetime(2026, 5, 1, 3, tzinfo=UTC)))
    await scheduler.reconcile()

    job_id = await scheduler.run_now("cleanup")
    assert job_id is not None
    assert await scheduler.relay() == 1
    assert await scheduler.relay() == 0
    assert (await client.get_job(job_id)).state.value == "completed"
    for queue in ("tickets-maintenance", "email-maintenance"):
        [event] = await client.find_jobs(queue)
        assert event.data == {
            "scope": "all",
            "schedule": "cleanup",
            "occurred_at": "2026-05-01T03:00:00+00:00",
        }


@pytest.fixture
async def api(client: QueueClient) -> AsyncIterator[httpx.AsyncClient]:
    await client.create_queue("ticket-actions")
    scheduler = Scheduler(
        client,
        [spec("auto-close", queue="ticket-actions", data={"action": "auto-close"})],
        clock=SystemClock(),
    )
    await scheduler.reconcile()
    app = create_api(scheduler, SecretStr("operator-secret"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://scheduler") as http:
        yield http


async def test_run_now_needs_the_operator_token_and_a_known_name(
    api: httpx.AsyncClient, client: QueueClient
) -> None:
    assert (await api.post("/schedules/auto-close/run")).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert (await api.post("/schedules/auto-close/run", headers=wrong)).status_code == 401
    auth = {"Authorization": "Bearer operator-secret"}
    assert (await api.post("/schedules/nothing/run", headers=auth)).status_code == 404
    assert await client.find_jobs("ticket-actions") == []

    fired = await api.post("/schedules/auto-close/run", headers=auth)
    assert fired.status_code == 202
    [job] = await client.find_jobs("ticket-actions")
    assert str(job.id) == fired.json()["job_id"]
    assert job.data == {"action": "auto-close", "schedule": "auto-close"}
    assert job.headers is not None and job.headers["manual"] is True


async def test_the_listing_shows_target_state_and_slots(api: httpx.AsyncClient) -> None:
    listed = await api.get("/schedules")
    assert listed.status_code == 200
    [item] = listed.json()
    assert item["name"] == "auto-close" and item["target"] == "queue:ticket-actions"
    assert item["state"] == "active" and item["enabled"] is True
    assert item["next_slot"].endswith(":00:00Z") or item["next_slot"].endswith("+00:00")
    assert item["last_job_id"] is None
