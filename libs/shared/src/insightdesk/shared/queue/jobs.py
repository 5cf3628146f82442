"""Job records as the engine hands them out."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class JobState(StrEnum):
    CREATED = "created"
    RETRY = "retry"
    ACTIVE = "active"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"


@dataclass(slots=True, eq=False)
class Job:
    """A claimed job, given to a handler. ``lease`` proves the claim; acks must carry it.

    The claim statements return exactly these fields by name (``claim_picked`` in
    ``sql/jobs.sql``), so the store maps rows onto it by column name (``session.job_picker``)."""

    id: uuid.UUID
    queue: str
    lease: uuid.UUID
    data: Any
    headers: dict[str, Any]
    retry_count: int
    retry_limit: int
    expire_in: float
    heartbeat: float | None
    priority: int
    singleton_key: str | None
    created_on: datetime
    start_after: datetime

    @property
    def attempt(self) -> int:
        """1 for the first run, 2 for the first retry, ..."""
        return self.retry_count + 1


@dataclass(frozen=True, slots=True)
class JobInfo:
    """Everything stored about a job, for operations and tests."""

    id: uuid.UUID
    name: str
    state: JobState
    priority: int
    data: Any
    headers: dict[str, Any] | None
    policy: str
    retry_limit: int
    retry_count: int
    retry_delay: float
    retry_backoff: bool
    retry_delay_max: float | None
    expire_in: float
    heartbeat: float | None
    delete_after: float
    keep_until: datetime
    start_after: datetime
    singleton_key: str | None
    singleton_on: datetime | None
    dead_letter: str | None
    created_on: datetime
    started_on: datetime | None
    heartbeat_on: datetime | None
    completed_on: datetime | None
    output: Any

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> JobInfo:
        values = dict(row)
        values["state"] = JobState(values["state"])
        return cls(**values)


@dataclass(frozen=True, slots=True)
class QueueStats:
    """Counts of one queue's jobs by state, plus how stale its backlog is.

    Read from counters the database keeps in step with every job change (statement triggers,
    no table scan; ``active`` through the index of running jobs, ``completed`` as the queue's
    total less the other states): the counts per state, ``ready`` and ``oldest_ready_age`` are
    exact as of the statement; ``completed_last_minute`` is an estimate from per-minute
    counters.
    """

    name: str
    created: int
    retry: int
    active: int
    completed: int
    cancelled: int
    failed: int
    ready: int
    oldest_ready_age: float
    completed_last_minute: int
    extra: dict[str, Any] = field(default_factory=dict)
