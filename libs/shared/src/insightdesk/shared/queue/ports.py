"""The engine's store port: what the consumer loop, heartbeater and supervisor need of a store.

Two adapters implement it and are held to one contract test module
(``tests/contract/test_job_store.py``): :class:`~insightdesk.shared.queue.store.PgStore` over
PostgreSQL and :class:`~insightdesk.shared.queue.memory.MemoryStore` in memory, which gives the
loop fast unit tests with no server and no wall-clock sleeps.

The loop talks to the store through a :class:`ClaimSession`: one long-lived connection on which
it completes finished jobs and claims new ones for *all* the queues it serves in one statement,
settles failures and snoozes, asks when delayed jobs come due, and waits for NOTIFYs.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Collection
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from insightdesk.shared.queue.jobs import Job, JobInfo
from insightdesk.shared.queue.options import JobOptions, QueueDefinition, QueueOptions


@dataclass(frozen=True, slots=True)
class ClaimRequest:
    """Claim up to ``limit`` ready jobs of ``queue``; ``keyed`` queues (singleton, stately)
    take the claim path that keeps one active job per singleton key. ``promote`` also makes
    the queue's waiting jobs (delayed, retrying, snoozed) whose start_after has come claimable
    in this claim; without it only jobs already ready are (the cheaper statement, which the
    consumer sends while a queue's claims come back full). Keyed claims always promote."""

    queue: str
    limit: int
    keyed: bool = False
    promote: bool = True


@dataclass(frozen=True, slots=True)
class Completion:
    """A job its handler finished; ``output`` is its JSON text (or None)."""

    id: uuid.UUID
    lease: uuid.UUID
    output: str | None


@dataclass(frozen=True, slots=True)
class Failure:
    """A failed attempt: retried after ``delay`` (None: the job's retry policy) while attempts
    are left, else failed into its dead-letter queue; ``final`` fails it at once. A stately
    job whose key already has a job waiting to retry yields to it: failed at once with a
    ``PolicyConflict`` error (README, "Policy collisions")."""

    job: Job
    error: dict[str, Any]
    delay: float | None = None
    final: bool = False


@dataclass(frozen=True, slots=True)
class Postponed:
    """A job put back in its queue for ``delay`` seconds without using an attempt (a snooze,
    or a release at shutdown with delay 0). On a short or stately queue whose key already has
    a job waiting in the state it would return to, it yields instead: failed with a
    ``PolicyConflict`` error."""

    job: Job
    delay: float


@dataclass(frozen=True, slots=True)
class Claimed:
    """What one claim cycle returned. ``contended`` names keyed queues whose claim lost a race
    for a singleton key and should be tried again soon."""

    jobs: list[Job]
    contended: frozenset[str] = frozenset()


class ClaimSession(Protocol):
    """The consumer loop's own connection (it also receives the NOTIFYs when listening)."""

    async def claim(
        self,
        done: list[Completion],
        wanted: list[ClaimRequest],
        *,
        default_heartbeat: float,
    ) -> Claimed:
        """Complete ``done`` (where their lease still holds) and claim for every request,
        each queue up to its own limit, in as few statements as the store can."""
        ...

    async def settle(self, failures: list[Failure], postponed: list[Postponed]) -> None:
        """Record failed attempts and put postponed jobs back (lease-guarded)."""
        ...

    async def next_due(self, queues: list[str]) -> dict[str, float]:
        """Seconds until the next not-yet-ready job of each queue is due (0 when one is ready
        now); queues with nothing queued are absent."""
        ...

    async def listen_to(self, queues: Collection[str]) -> None:
        """Receive the notifications of exactly these queues from now on (a listening session
        starts with none): a send to any other queue does not wake this session."""
        ...

    async def wait(self, wake: asyncio.Event, timeout: float) -> set[str]:
        """Sleep until ``wake`` is set, a notification arrives or ``timeout`` passes; return the
        queues notified meanwhile (raises :class:`~insightdesk.shared.errors.ConnectionLost`)."""
        ...


class JobStore(Protocol):
    """The store as the engine's loops see it."""

    def session(self, *, listen: bool) -> AbstractAsyncContextManager[ClaimSession]:
        """A claim session on a connection of its own, LISTENing when ``listen``."""
        ...

    async def create_queue(self, name: str, options: QueueOptions | None = None) -> None: ...

    async def get_queue(self, name: str) -> QueueDefinition: ...

    async def send(
        self, queue: str, data: Any = None, options: JobOptions | None = None
    ) -> uuid.UUID | None: ...

    async def get_job(self, job_id: uuid.UUID) -> JobInfo: ...

    async def claim(
        self, queue: str, limit: int = 1, *, default_heartbeat: float = 15.0
    ) -> list[Job]: ...

    async def complete(self, job_id: uuid.UUID, lease: uuid.UUID, output: Any = None) -> bool: ...

    async def fail_jobs(self, failures: list[Failure]) -> int:
        """Failed attempts outside a session; returns how many leases still held."""
        ...

    async def postpone(self, postponed: list[Postponed]) -> int:
        """Snooze/release outside a session; returns how many leases still held."""
        ...

    async def heartbeat(self, jobs: list[Job]) -> int:
        """Prove ``jobs`` are alive in one statement; returns how many leases still held."""
        ...

    async def recover(self, *, default_heartbeat: float, limit: int) -> list[tuple[uuid.UUID, str]]:
        """Re-queue or fail active jobs whose heartbeat stopped or that ran past expire_in."""
        ...
