"""Cron expressions for the job scheduler: parsing and slot arithmetic.

The scheduler promises exactly one job per (schedule, slot), so a slot must be one reproducible
UTC instant whichever process computes it, and whenever. :func:`parse_cron` validates the text
up front, so a bad schedule is rejected when it is saved rather than when it fails to fire.

Syntax: five fields ``minute hour day-of-month month day-of-week``, or six with a leading
``second`` field. Supported: ``*``, lists ``a,b``, ranges ``a-b``, steps ``*/n``, ``a-b/n``
and ``a/n`` (``a`` up to the field's maximum), month names JAN-DEC and weekday names SUN-SAT
in any case, day-of-week 0-7 with 0 and 7 both Sunday, and the macros ``@yearly``/``@annually``,
``@monthly``, ``@weekly``, ``@daily``/``@midnight`` and ``@hourly``. As in Vixie cron, when
day-of-month and day-of-week are both restricted a day matches if either one does; otherwise
both must. A field whose text starts with ``*`` (``*`` itself or e.g. ``*/2``) counts as
unrestricted for this rule.

Daylight saving time. Fields match the wall clock of the zone, under one of two regimes:

* Fixed-hour expressions, whose hour field does not cover all 24 hours (``30 2 * * *``,
  ``0 8 * * 1-5``), follow the wall clock. A matching local time that does not exist
  (spring-forward gap) fires once, at the first real instant after the gap: 02:30 in
  Europe/Berlin on the spring day fires at 03:00 CEST = 01:00 UTC. If several matching times
  fall into one gap, or a gap time and the time right after the gap both match, they become
  that one slot. A local time that occurs twice (fall-back overlap) fires once, at its first
  occurrence (``fold=0``).
* Every-hour expressions, whose hour field covers all 24 hours (``*``, ``0-23``, ``*/1``),
  follow real time: a UTC instant is a slot when its local wall time matches. So
  ``*/15 * * * *`` stays 15 real minutes apart across both transitions. It has nothing to
  match in the skipped hour and fires in both passes of the repeated hour; ``0 * * * *``
  fires at 01:00 EDT and again at 01:00 EST.

Slots are whole seconds and are returned as aware datetimes in UTC.

Why not cronsim: ``tests/unit/test_cron_vs_cronsim.py`` runs it on the cases above. It agrees on
all but one: asked for the next ``30 2 * * *`` from inside the second pass of a fall-back hour
(02:15 CET on Berlin's fall day), it returns the first pass (02:30 CEST), an instant before the
one asked from, so a scheduler would fire that slot again; this module answers the next day.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from insightdesk.shared.errors import InvalidArgument, InvalidCron

__all__ = ["CronExpression", "load_zone", "parse_cron"]

_SECOND = timedelta(seconds=1)
# While looking for a UTC-offset change the zone's offset is checked at least this often. No
# zone changes its offset twice within one day, so no change can hide between two checks.
_PROBE_STEP = timedelta(days=1)
# Every day pattern that can match at all repeats within one 400-year Gregorian cycle.
_HORIZON_YEARS = 400
_LAST_YEAR = 9999

_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_WEEKDAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# The longest each month can be (February: 29), for the "can this ever fire?" check.
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


@dataclass(frozen=True, slots=True)
class _Field:
    """How to read one position of the expression."""

    name: str
    low: int
    high: int  # the largest value that may be written
    implied_high: int  # upper end of ``*`` and ``a/n``; 6 for weekdays so Sunday is not doubled
    names: Mapping[str, int]


_FIELDS = (
    _Field("second", 0, 59, 59, {}),
    _Field("minute", 0, 59, 59, {}),
    _Field("hour", 0, 23, 23, {}),
    _Field("day-of-month", 1, 31, 31, {}),
    _Field("month", 1, 12, 12, {name: i for i, name in enumerate(_MONTHS, start=1)}),
    _Field("day-of-week", 0, 7, 6, {name: i for i, name in enumerate(_WEEKDAYS)}),
)


def load_zone(name: str) -> ZoneInfo:
    """Return the IANA time zone ``name``; a misspelt zone is an invalid schedule, not a crash."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise InvalidCron(f"unknown time zone {name!r}") from exc


def parse_cron(expr: str) -> CronExpression:
    """Parse and validate a cron expression (syntax in the module docstring).

    Raises :class:`InvalidCron` that names the expression and the bad part. This includes an
    expression that can never fire, such as ``0 0 30 2 *``, because a schedule that never fires
    is almost certainly a mistake.
    """
    text = expr.strip()
    if not text:
        raise InvalidCron(f"invalid cron expression {expr!r}: it is empty")
    body = text
    if text.startswith("@"):
        macro = _MACROS.get(text.lower())
        if macro is None:
            known = ", ".join(sorted(_MACROS))
            raise InvalidCron(f"invalid cron expression {expr!r}: unknown macro (known: {known})")
        body = macro
    parts = body.split()
    if len(parts) == 5:
        parts.insert(0, "0")
    elif len(parts) != 6:
        raise InvalidCron(
            f"invalid cron expression {expr!r}: expected 5 fields (minute hour day-of-month "
            f"month day-of-week) or 6 with a leading second field, got {len(parts)}"
        )
    second, minute, hour, day, month, weekday = (
        _parse_field(expr, spec, part) for spec, part in zip(_FIELDS, parts, strict=True)
    )
    dom_any, dow_any = parts[3].startswith("*"), parts[5].startswith("*")
    cron = CronExpression(text, second, minute, hour, day, month, weekday, not dom_any, not dow_any)
    if not (cron.dom_restricted and cron.dow_restricted) and not any(
        d <= _MONTH_DAYS[m - 1] for m in cron.months for d in cron.days
    ):
        # With the OR rule every month has a matching weekday. Otherwise a real (month, day)
        # pair is needed, and suffices: every date falls on every weekday in some year.
        raise InvalidCron(
            f"invalid cron expression {expr!r}: it can never fire "
            f"(no month in {parts[4]!r} has a day {parts[3]!r})"
        )
    return cron


def _parse_field(expr: str, spec: _Field, text: str) -> tuple[int, ...]:
    """Expand one field into the sorted values it matches."""

    def fail(detail: str) -> InvalidCron:
        return InvalidCron(f"invalid cron expression {expr!r}: {spec.name} field {text!r} {detail}")

    def value(token: str) -> int:
        if token.isascii() and token.isdigit():
            number = int(token)
        elif token.upper() in spec.names:
            number = spec.names[token.upper()]
        elif not token:
            raise fail("has an empty value")
        else:
            raise fail(f"has an unknown value {token!r}")
        if not spec.low <= number <= spec.high:
            raise fail(f"has {number} out of range {spec.low}-{spec.high}")
        return number

    values: set[int] = set()
    for item in text.split(","):
        if not item:
            raise fail("has an empty list item")
        base, has_step, step_text = item.partition("/")
        step = 1
        if has_step:
            if not (step_text.isascii() and step_text.isdigit()):
                raise fail(f"has an invalid step {step_text!r}")
            step = int(step_text)
            if step == 0:
                raise fail("has a step of 0")
        if base == "*":
            first, last = spec.low, spec.implied_high
        elif "-" in base:
            start_text, _, end_text = base.partition("-")
            first, last = value(start_text), value(end_text)
            if first > last:
                raise fail(f"has a reversed range {base!r}")
        else:
            first = value(base)
            last = spec.implied_high if has_step else first
        values.update(range(first, last + 1, step))
    if spec.name == "day-of-week" and 7 in values:
        values = (values - {7}) | {0}
    return tuple(sorted(values))


@dataclass(frozen=True)
class CronExpression:
    """A validated cron expression: an immutable value, safe to share and to use as a key.

    Build one with :func:`parse_cron`. Each tuple holds the sorted values its field matches;
    weekdays count from 0 = Sunday.
    """

    expression: str
    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: tuple[int, ...]
    months: tuple[int, ...]
    weekdays: tuple[int, ...]
    dom_restricted: bool
    dow_restricted: bool

    def __str__(self) -> str:
        return self.expression

    def next_after(self, after: datetime, tz: ZoneInfo) -> datetime:
        """Return the first slot strictly after ``after``, as an aware UTC datetime.

        ``after`` must be timezone-aware, in any zone; a naive one raises
        :class:`InvalidArgument` because it has no single meaning. Fields match the wall clock
        of ``tz`` under the DST rules in the module docstring. The search skips whole months,
        days, hours and minutes that cannot match, so a rare slot (``0 0 29 2 *``) is cheap.
        """
        start = _to_utc(after, "after").replace(microsecond=0)
        try:
            if len(self.hours) == 24:
                return self._next_real_time(start, tz)
            return self._next_wall_clock(start, tz)
        except OverflowError as exc:
            raise InvalidArgument(
                f"cron {self.expression!r} has no slot after {after.isoformat()} within "
                "the supported date range"
            ) from exc

    def slots_between(
        self, start: datetime, end: datetime, tz: ZoneInfo, limit: int = 1000
    ) -> list[datetime]:
        """Return the slots ``s`` with ``start < s <= end`` in UTC, oldest first.

        At most ``limit`` slots are returned, and they are the *earliest* ones. A caller
        catching up after a long outage can page forward from the last slot it received.
        An empty window (``end <= start``) gives an empty list.
        """
        if limit < 0:
            raise InvalidArgument(f"limit must be >= 0, got {limit}")
        cursor = _to_utc(start, "start")
        stop = _to_utc(end, "end")
        slots: list[datetime] = []
        while len(slots) < limit and cursor < stop:
            slot = self.next_after(cursor, tz)
            if slot > stop:
                break
            slots.append(slot)
            cursor = slot
        return slots

    def _next_wall_clock(self, start: datetime, tz: ZoneInfo) -> datetime:
        """Fixed-hour regime: walk matching wall times and map each to its one instant."""
        wall = _wall(start, tz)
        while True:
            wall = self._next_match(wall + _SECOND)
            slot = _resolve(wall, tz)
            # Wall times map to instants monotonically, so the first one after ``start`` wins;
            # earlier ones are second-pass overlap times or a gap that has already fired.
            if slot > start:
                return slot

    def _next_real_time(self, start: datetime, tz: ZoneInfo) -> datetime:
        """Every-hour regime: search one constant-offset stretch of real time after another."""
        instant, wall = start, _wall(start, tz) + _SECOND
        while True:
            offset = _offset(instant, tz)
            candidate = (self._next_match(wall) - offset).replace(tzinfo=UTC)
            change = _offset_change(tz, instant, candidate)
            if change is None:
                return candidate
            # The offset changes before the candidate: search again under the new offset.
            instant, wall = change, _wall(change, tz)

    def _next_match(self, moment: datetime) -> datetime:
        """Return the first naive wall time at or after ``moment`` that matches every field."""
        horizon = min(moment.year + _HORIZON_YEARS, _LAST_YEAR)
        while moment.year < horizon:
            if moment.month not in self.months:
                month = _ceil(self.months, moment.month)
                year = moment.year if month is not None else moment.year + 1
                moment = moment.replace(
                    year=year, month=month or self.months[0], day=1, hour=0, minute=0, second=0
                )
                continue
            midnight = moment.replace(hour=0, minute=0, second=0)
            if not self._day_matches(moment):
                moment = midnight + timedelta(days=1)
                continue
            hour = _ceil(self.hours, moment.hour)
            if hour is None:
                moment = midnight + timedelta(days=1)
                continue
            if hour != moment.hour:
                moment = moment.replace(hour=hour, minute=0, second=0)
            minute = _ceil(self.minutes, moment.minute)
            if minute is None:
                moment = moment.replace(minute=0, second=0) + timedelta(hours=1)
                continue
            if minute != moment.minute:
                moment = moment.replace(minute=minute, second=0)
            second = _ceil(self.seconds, moment.second)
            if second is None:
                moment = moment.replace(second=0) + timedelta(minutes=1)
                continue
            return moment.replace(second=second)
        raise OverflowError("no matching time before the search horizon")

    def _day_matches(self, day: datetime) -> bool:
        """Apply the day-of-month / day-of-week rule (either one if both are restricted)."""
        dom = day.day in self.days
        dow = day.isoweekday() % 7 in self.weekdays
        if self.dom_restricted and self.dow_restricted:
            return dom or dow
        return dom and dow


def _ceil(values: tuple[int, ...], at_least: int) -> int | None:
    """Return the smallest of the sorted ``values`` that is >= ``at_least``, if any."""
    index = bisect_left(values, at_least)
    return values[index] if index < len(values) else None


def _to_utc(value: datetime, name: str) -> datetime:
    if value.utcoffset() is None:
        raise InvalidArgument(f"{name} must be a timezone-aware datetime, got {value.isoformat()}")
    return value.astimezone(UTC)


def _wall(instant: datetime, tz: ZoneInfo) -> datetime:
    """Return the naive wall-clock reading of ``instant`` in ``tz``."""
    return instant.astimezone(tz).replace(tzinfo=None)


def _offset(instant: datetime, tz: ZoneInfo) -> timedelta:
    return instant.astimezone(tz).utcoffset() or timedelta(0)


def _resolve(wall: datetime, tz: ZoneInfo) -> datetime:
    """Return the instant at which wall time ``wall`` fires in the fixed-hour regime."""
    first = wall.replace(tzinfo=tz).astimezone(UTC)  # fold=0: the first of two occurrences
    if _wall(first, tz) == wall:
        return first
    # ``wall`` is in a gap: fold=0 and fold=1 land on either side of the transition. The
    # transition instant itself is the first real instant after the gap.
    other = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    low, high = min(first, other), max(first, other)
    change = _offset_change(tz, low, high)
    return high if change is None else change


def _offset_change(tz: ZoneInfo, low: datetime, high: datetime) -> datetime | None:
    """Return the first whole-second instant in ``(low, high]`` where the offset of ``tz``
    differs from its offset at ``low``, or None if the offset stays the same.

    Both bounds must be whole seconds, which is also the resolution of tz transitions.
    """
    base = _offset(low, tz)
    probe = low
    while probe < high:
        nxt = min(probe + _PROBE_STEP, high)
        if _offset(nxt, tz) != base:
            before, after = probe, nxt
            while after - before > _SECOND:
                middle = before + (after - before) // _SECOND // 2 * _SECOND
                if _offset(middle, tz) == base:
                    before = middle
                else:
                    after = middle
            return after
        probe = nxt
    return None
