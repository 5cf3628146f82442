"""Typed outcomes a handler can signal besides "done" (return) and "failed" (any other error)."""

from __future__ import annotations

import math
from datetime import timedelta
from enum import StrEnum

from insightdesk.shared.errors import InvalidOutcome
from insightdesk.shared.queue.options import MAX_DURATION


def checked_delay(delay: object) -> float:
    """``delay`` in seconds if an outcome can carry it out: a finite number from 0 to
    :data:`~insightdesk.shared.queue.options.MAX_DURATION` (10 years); else
    :class:`~insightdesk.shared.errors.InvalidOutcome`. The worker checks again when it
    collects an outcome, so a delay changed after construction fails its job, not the loop."""
    if isinstance(delay, timedelta):
        seconds = delay.total_seconds()
    elif isinstance(delay, int | float) and not isinstance(delay, bool):
        seconds = float(delay)
    else:
        raise InvalidOutcome(f"delay must be a number of seconds, got {delay!r}")
    if not (math.isfinite(seconds) and 0 <= seconds <= MAX_DURATION):
        raise InvalidOutcome(
            f"delay must be a finite number of seconds from 0 to {MAX_DURATION} (10 years), "
            f"got {delay!r}"
        )
    return seconds


class HandlerOutcome(Exception):
    """Base of the outcomes; raised by a handler, interpreted by the worker."""


class Snooze(HandlerOutcome):
    """Run the job again after ``delay`` seconds. By default this does not use an attempt;
    with ``count_attempt=True`` it does (and fails the job when none are left).

    ``delay`` must be finite and from 0 to 10 years, else ``InvalidOutcome`` is raised (and,
    raised by a handler, fails that job's attempt like any error). On a short or stately queue
    a snooze whose key already has a job waiting in the state it would return to yields to
    that job: it is failed with a ``PolicyConflict`` error (see the README's queue policies)."""

    def __init__(self, delay: float | timedelta, *, count_attempt: bool = False) -> None:
        self.delay = checked_delay(delay)
        self.count_attempt = count_attempt
        super().__init__(f"snoozed for {self.delay}s")


class RetryLater(HandlerOutcome):
    """A failed attempt that should be retried after ``delay`` (instead of the queue's backoff);
    ``delay`` is bounded like :class:`Snooze`'s."""

    def __init__(self, delay: float | timedelta, reason: str = "retry requested") -> None:
        self.delay = checked_delay(delay)
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
