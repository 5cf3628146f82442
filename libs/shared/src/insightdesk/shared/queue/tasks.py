"""Stopping background tasks cleanly."""

from __future__ import annotations

import asyncio
from typing import Any


async def cancel_and_wait(task: asyncio.Task[Any]) -> None:
    """Cancel a background task and wait for it, without swallowing our own cancellation."""
    task.cancel()
    await asyncio.wait([task])
    current = asyncio.current_task()
    if current is not None and current.cancelling():
        raise asyncio.CancelledError
