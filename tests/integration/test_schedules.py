"""Cron schedules against a real database: one job per slot, missed ticks, validation."""

from __future__ import annotations

import asyncio
import collections
import contextlib
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from insightdesk.shared.errors import InvalidArgument, InvalidCron, QueueNotFound
from insightdesk.shared.queue import JobOptions, QueueClient
from insightdesk.shared.queue.scheduler import CronScheduler


async def test_three_schedulers_at_once_create_one_job_per_slot(
    client: QueueClient, db_dsn: str
) -> None:
    await client.create_queue("ticks")
    await CronScheduler(client).schedule("every-second", "ticks", "* * * * * *", data={"x": 1})
    async with contextlib.AsyncExitStack() as stack:
        schedulers = []
        for _ in range(3):
            other = await stack.enter_async_context(
                QueueClient.connect(db_dsn, migrate_schema=False)
            )
            scheduler = CronScheduler(other, tick_interval=0.05)
            scheduler.start()
            schedulers.append(scheduler)
        await asyncio.sleep(3.2)
        for scheduler in schedulers:
            await scheduler.stop()
    jobs = await client.find_jobs("ticks", limit=1000)
    per_slot = collections.Counter(j.headers["slot"] for j in jobs if j.headers)
    assert 2 <= len(per_slot) <= 4
    assert set(per_slot.values()) == {1}
    assert all(j.data == {"x": 1} for j in jobs)


async def _rewind(client: QueueClient, name: str, minutes: int) -> None:
    async with client.pool.connection() as conn:
        await conn.execute(
            "UPDATE queue.schedule SET last_slot = now() - make_interval(mins => %s) "
            "WHERE name = %s",
            (minutes, name),
        )


async def test_missed_ticks_are_skipped_or_caught_up_within_grace(client: QueueClient) -> None:
    await client.create_queue("cron")
    scheduler = CronScheduler(client)
    await scheduler.schedule("skipper", "cron", "* * * * *", missed="skip", grace=60)
    await scheduler.schedule("catcher", "cron", "* * * * *", missed="catch_up", grace=300)
    await scheduler.schedule("too-late", "cron", "0 0 1 1 *", missed="skip", grace=60)
    for name in ("skipper", "catcher"):
        await _rewind(client, name, 10)
    await _rewind(client, "too-late", 60 * 24 * 400)  # missed last new year by months
    fired = collections.Counter(f.schedule for f in await scheduler.tick())
    assert fired["skipper"] == 1  # only the latest slot, which is < 60 s old
    assert 4 <= fired["catcher"] <= 5  # every missed minute of the last 5
    assert fired["too-late"] == 0  # never fired late, but passed over
    assert collections.Counter(f.schedule for f in await scheduler.tick()) == {}
    rows = {r["name"]: r for r in await scheduler.schedules()}
    too_late = rows["too-late"]
    assert too_late["db_now"] - timedelta(days=366) < too_late["last_slot"] <= too_late["db_now"]


async def test_schedule_job_options_are_applied(client: QueueClient) -> None:
    await client.create_queue("opts")
    scheduler = CronScheduler(client)
    await scheduler.schedule(
        "opt", "opts", "* * * * *", options=JobOptions(priority=4, retry_limit=7)
    )
    await _rewind(client, "opt", 1)
    [fired] = await scheduler.tick()
    assert fired.job_id is not None
    job = await client.get_job(fired.job_id)
    assert (job.priority, job.retry_limit) == (4, 7)
    assert job.headers == {"schedule": "opt", "slot": fired.slot.isoformat()}


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"cron": "61 * * * *"}, InvalidCron),
        ({"cron": "0 0 30 2 *"}, InvalidCron),
        ({"timezone": "Mars/Olympus"}, InvalidCron),
        ({"missed": "sometimes"}, InvalidArgument),
        ({"grace": -1}, InvalidArgument),
        ({"queue": "missing"}, QueueNotFound),
        ({"options": JobOptions(start_after=5)}, InvalidArgument),
    ],
)
async def test_bad_schedules_are_refused_and_nothing_is_stored(
    client: QueueClient, kwargs: dict[str, object], error: type[Exception]
) -> None:
    await client.create_queue("q")
    scheduler = CronScheduler(client)
    args: dict[str, object] = {"queue": "q", "cron": "* * * * *"} | kwargs
    with pytest.raises(error):
        await scheduler.schedule("bad", **args)  # type: ignore[arg-type]
    assert await scheduler.schedules() == []


async def test_time_zone_decides_the_slot(client: QueueClient) -> None:
    await client.create_queue("tz")
    scheduler = CronScheduler(client)
    await scheduler.schedule(
        "berlin-8am",
        "tz",
        "0 8 * * *",
        timezone="Europe/Berlin",
        missed="catch_up",
        grace=86400 * 2,
    )
    await _rewind(client, "berlin-8am", 60 * 24)
    fired = await scheduler.tick()
    assert len(fired) == 1
    local = fired[0].slot.astimezone(ZoneInfo("Europe/Berlin"))
    assert (local.hour, local.minute) == (8, 0)
