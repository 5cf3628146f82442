"""Small polling helpers for integration tests (deadlines, never bare long sleeps)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

from insightdesk.shared.queue import JobState, QueueClient


async def wait_until(
    predicate: Callable[[], Awaitable[bool]], timeout: float = 10.0, interval: float = 0.02
) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


async def wait_for_state(
    client: QueueClient, job_id: uuid.UUID, state: JobState, timeout: float = 10.0
) -> None:
    async def reached() -> bool:
        return (await client.get_job(job_id)).state == state

    await wait_until(reached, timeout)
