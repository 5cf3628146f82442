"""Business time: the two primitives every SLA deadline is made of.

A :class:`BusinessCalendar` is an IANA zone, opening intervals per weekday (local wall-clock
minutes; an interval may run past midnight, it belongs to the day it starts on), holidays (a
predicate over local dates: the ``holidays`` package plus custom dates) and per-date overrides
(a partial day: that date's intervals replace the weekday's, whether or not it is a holiday).

Wall-clock intervals become real instants in the zone, so a DST day is measured as it happens:
an interval 00:00-06:00 lasts five hours on a spring-forward night and seven on a fall-back one.
A wall time inside a spring-forward gap is read with the offset before the gap (so it lands
after it), an ambiguous one at its first occurrence for a start and its second for an end.

* :meth:`BusinessCalendar.business_time` (and ``business_minutes``): the business time between
  two instants;
* :meth:`BusinessCalendar.due_at`: the instant at which ``minutes`` of business time have passed
  since ``start``.

``business_time(a, due_at(a, m)) == m`` exactly (datetime arithmetic is integral microseconds).
Pure code: no I/O, no "now" — callers pass the instants.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = [
    "ALWAYS_OPEN",
    "BusinessCalendar",
    "NoBusinessTime",
    "Span",
    "always_open",
]

MINUTES_PER_DAY = 24 * 60
HORIZON_DAYS = 3 * 366
"""How far :meth:`BusinessCalendar.due_at` looks for business time before giving up."""

Span = tuple[int, int]
"""Local minutes since the day's midnight: ``(start, end)``, ``0 <= start < end <= 2 * 1440``."""


class NoBusinessTime(ValueError):
    """The calendar has no business time left within the search horizon."""


def _no_holidays(day: date) -> bool:
    return False


@dataclass(frozen=True, slots=True, eq=False)
class BusinessCalendar:
    """Opening hours in a zone. ``week[d]`` are the spans of weekday ``d`` (Monday = 0)."""

    zone: ZoneInfo
    week: Mapping[int, Sequence[Span]]
    is_holiday: Callable[[date], bool] = _no_holidays
    overrides: Mapping[date, Sequence[Span]] = field(default_factory=dict)
    _cache: dict[date, tuple[tuple[datetime, datetime], ...]] = field(
        default_factory=dict, repr=False
    )
    _plain: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        for spans in (*self.week.values(), *self.overrides.values()):
            for start, end in spans:
                if not 0 <= start < end <= 2 * MINUTES_PER_DAY:
                    raise ValueError(f"bad span {(start, end)}: need 0 <= start < end <= 2880")
        always = all(tuple(self.week.get(d, ())) == ((0, MINUTES_PER_DAY),) for d in range(7)) and (
            not self.overrides and self.is_holiday is _no_holidays
        )
        object.__setattr__(self, "_plain", always)  # 24x7: business time is plain time

    # ------------------------------------------------------------------ periods

    def spans_of(self, day: date) -> Sequence[Span]:
        """The local spans that start on ``day`` (override, else nothing on a holiday, else
        the weekday's)."""
        if day in self.overrides:
            return self.overrides[day]
        if self.is_holiday(day):
            return ()
        return self.week.get(day.weekday(), ())

    def _day_periods(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        cached = self._cache.get(day)
        if cached is not None:
            return cached
        periods = []
        for start, end in self.spans_of(day):
            a = self._instant(day, start, fold=0)
            b = self._instant(day, end, fold=1)
            if b > a:
                periods.append((a, b))
        result = tuple(sorted(periods))
        if len(self._cache) > 4096:
            self._cache.clear()
        self._cache[day] = result
        return result

    def _instant(self, day: date, minute: int, *, fold: int) -> datetime:
        days, minute = divmod(minute, MINUTES_PER_DAY)
        local = datetime.combine(
            day + timedelta(days=days),
            time(minute // 60, minute % 60, fold=fold),
            tzinfo=self.zone,
        )
        return local.astimezone(UTC)

    def periods(
        self, start: datetime, until: datetime | None = None
    ) -> Iterator[tuple[datetime, datetime]]:
        """Business periods (UTC instants, ascending, never overlapping) that end after
        ``start``, clipped to begin no earlier than it: up to ``until``, or about three years
        of them without it.

        Periods start in ascending order across days (a day's spans start before the next
        local midnight), so clipping each to the end of the one before removes any overlap
        between a span running past midnight and the next day's.
        """
        _require_aware(start)
        cursor = start.astimezone(UTC)
        day = cursor.astimezone(self.zone).date() - timedelta(days=2)
        last = (
            until.astimezone(self.zone).date()
            if until is not None
            else day + timedelta(days=HORIZON_DAYS + 3)
        )
        while day <= last:
            for opens, closes in self._day_periods(day):
                if closes <= cursor:
                    continue
                yield max(opens, cursor), closes
                cursor = closes
            day += timedelta(days=1)

    # ------------------------------------------------------------------ primitives

    def business_time(self, a: datetime, b: datetime) -> timedelta:
        """Business time in ``[a, b)``; zero when ``b <= a``."""
        _require_aware(a)
        _require_aware(b)
        total = timedelta(0)
        if b <= a:
            return total
        if self._plain:  # in UTC: subtracting in one zone would be wall-clock arithmetic
            return b.astimezone(UTC) - a.astimezone(UTC)
        for start, end in self.periods(a, b):
            if start >= b:
                break
            total += min(end, b) - start
            if end >= b:
                break
        return total

    def business_minutes(self, a: datetime, b: datetime) -> float:
        """:meth:`business_time` in minutes."""
        return self.business_time(a, b) / timedelta(minutes=1)

    def due_at(self, start: datetime, minutes: float | timedelta) -> datetime:
        """The instant at which ``minutes`` of business time have passed since ``start``
        (``start`` itself for zero). Raises :class:`NoBusinessTime` when the calendar has
        none within about three years."""
        _require_aware(start)
        left = minutes if isinstance(minutes, timedelta) else timedelta(minutes=minutes)
        if left < timedelta(0):
            raise ValueError(f"minutes must be >= 0, got {minutes!r}")
        if not left:
            return start
        if self._plain:
            return start.astimezone(UTC) + left
        for a, b in self.periods(start):
            length = b - a
            if length >= left:
                return a + left
            left -= length
        raise NoBusinessTime("the calendar has no business time within three years")


def _require_aware(instant: datetime) -> None:
    if instant.utcoffset() is None:
        raise ValueError(f"business time needs aware datetimes, got {instant.isoformat()}")


def always_open(zone: str = "UTC") -> BusinessCalendar:
    """A 24x7 calendar: business time equals plain elapsed time."""
    return BusinessCalendar(
        zone=ZoneInfo(zone), week=dict.fromkeys(range(7), ((0, MINUTES_PER_DAY),))
    )


ALWAYS_OPEN = always_open()
