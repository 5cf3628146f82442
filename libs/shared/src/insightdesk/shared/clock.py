"""Where "now" comes from: one :class:`Clock` protocol instead of a ``utc_now`` per service.

Composition roots pass a :class:`SystemClock`; tests pass a :class:`FakeClock` and move it by
hand, so domain rules that depend on time (auto-close after N days, SLA deadlines, digest hours)
are tested without sleeping. Every instant is timezone-aware UTC (STYLE rule 11).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "FakeClock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """A source of the current instant (aware, UTC)."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real wall clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def __repr__(self) -> str:
        return "SystemClock()"


class FakeClock:
    """A clock that only moves when told: ``FakeClock(start)``, ``advance(...)``, ``set(...)``."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = _aware(start or datetime(2026, 1, 1, tzinfo=UTC))

    def now(self) -> datetime:
        return self._now

    def advance(self, by: timedelta | float) -> datetime:
        """Move forward by a timedelta or a number of seconds; returns the new instant."""
        step = by if isinstance(by, timedelta) else timedelta(seconds=by)
        if step < timedelta(0):
            raise ValueError(f"a clock does not go backwards ({step})")
        self._now += step
        return self._now

    def set(self, instant: datetime) -> None:
        self._now = _aware(instant)

    def __repr__(self) -> str:
        return f"FakeClock({self._now.isoformat()})"


def _aware(instant: datetime) -> datetime:
    if instant.utcoffset() is None:
        raise ValueError(f"a clock keeps aware datetimes, got naive {instant.isoformat()}")
    return instant.astimezone(UTC)
