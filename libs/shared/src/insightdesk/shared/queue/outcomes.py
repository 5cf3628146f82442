"""Typed outcomes a handler can signal besides "done" (return) and "failed" (any other error)."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum


def _as_seconds(delay: float | timedelta) -> float:
    seconds = delay.total_seconds() if isinstance(delay, timedelta) else float(delay)
    if seconds < 0:
        raise ValueError(f"delay must be >= 0 seconds, got {delay!r}")
    return seconds


class HandlerOutcome(Exception):
    """Base of the outcomes; raised by a handler, interpreted by the worker."""


class Snooze(HandlerOutcome):
    """Run the job again after ``delay`` seconds. By default this does not use an attempt;
    with ``count_attempt=True`` it does (and fails the job when none are left)."""

    def __init__(self, delay: float | timedelta, *, count_attempt: bool = False) -> None:
        self.delay = _as_seconds(delay)
        self.count_attempt = count_attempt
        super().__init__(f"snoozed for {self.delay}s")


class RetryLater(HandlerOutcome):
    """A failed attempt that should be retried after ``delay`` (instead of the queue's backoff)."""

    def __init__(self, delay: float | timedelta, reason: str = "retry requested") -> None:
        self.delay = _as_seconds(delay)
        self.reason = reason
        super().__init__(reason)


class Reject(HandlerOutcome):
    """The job can never succeed: fail it now, without retries, into its dead-letter queue."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class Outcome(StrEnum):
    """What became of a job a handler ran (reported to ``on_job_done``)."""

    COMPLETED = "completed"
    SNOOZED = "snoozed"
    RETRIED = "retried"
    """Failed an attempt; it will run again."""
    FAILED = "failed"
    """Failed for good (no attempts left, or rejected): in its dead-letter queue if it has one."""
