"""One heartbeat statement per process for every job its consumer holds.

A job's heartbeat proves its worker alive; crash recovery re-queues an active job whose
heartbeat is older than its period. Instead of a task per worker waking every 0.2 s, one task per
consumer sleeps until a third of the shortest period among the held jobs has passed (or until new
jobs arrive, which may shorten it) and then touches all held jobs in one statement. With nothing
held it sleeps until the next claim: idle costs nothing. A failed heartbeat is logged (with
its exception) and tried again at the next period; nothing ends the loop but :meth:`stop`,
which is bounded even when the driver swallows the cancellation.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from insightdesk.shared.queue.jobs import Job
from insightdesk.shared.queue.ports import JobStore
from insightdesk.shared.queue.tasks import Backoff, Loops, cancel_and_wait, log_failure

log = logging.getLogger(__name__)


class Heartbeater:
    """Keeps the jobs ``held()`` returns alive through ``store``."""

    def __init__(
        self,
        store: JobStore,
        held: Callable[[], list[Job]],
        *,
        default_heartbeat: float,
        loops: Loops | None = None,
    ) -> None:
        self.store = store
        self.loops = Loops() if loops is None else loops
        self.default_heartbeat = default_heartbeat
        self.beats = 0
        self._held = held
        self._kick = asyncio.Event()
        self._period: float | None = None  # the period being waited out; None: nothing held
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = self.loops.spawn("heartbeats", self._run())

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None

    def claimed(self, jobs: list[Job]) -> None:
        """New jobs are held: wake to recompute the period if they may shorten it (cheap when
        they do not: no wake-up per claim)."""
        if self._period is None or (jobs and self.period(jobs) < self._period):
            self._kick.set()

    def period(self, jobs: list[Job]) -> float:
        return min((j.heartbeat or self.default_heartbeat) for j in jobs) / 3

    async def _run(self) -> None:
        backoff = Backoff(0.05, 5.0)  # counts failures in a row for the log
        last = time.monotonic()
        while True:
            self._kick.clear()
            jobs = self._held()
            if not jobs:
                self._period = None
                await self._kick.wait()
                last = time.monotonic()  # fresh claims carry a fresh heartbeat
                continue
            self._period = self.period(jobs)
            remaining = last + self._period - time.monotonic()
            if remaining > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._kick.wait(), remaining)
                continue  # re-read what is held: jobs came or went
            last = time.monotonic()
            try:
                await self.store.heartbeat(jobs)
                self.beats += 1
                backoff.reset()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001  # the next period tries again
                log_failure(log, f"heartbeat for {len(jobs)} job(s)", exc, backoff)
