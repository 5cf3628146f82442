"""Unit tests for the cron parser and slot calculator (pure computation, no I/O)."""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from insightdesk.shared.errors import InvalidArgument, InvalidCron
from insightdesk.shared.queue.cron import load_zone, parse_cron

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
ZULU = ZoneInfo("UTC")


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def upcoming(expr: str, after: datetime, tz: ZoneInfo = ZULU, count: int = 1) -> list[datetime]:
    """The next ``count`` slots after ``after``, each found with ``next_after``."""
    cron = parse_cron(expr)
    slots: list[datetime] = []
    for _ in range(count):
        after = cron.next_after(after, tz)
        slots.append(after)
    return slots


# --- syntax ----------------------------------------------------------------------------------


def test_star_fires_every_minute() -> None:
    assert upcoming("* * * * *", utc(2024, 5, 1, 12, 0, 30), count=3) == [
        utc(2024, 5, 1, 12, 1),
        utc(2024, 5, 1, 12, 2),
        utc(2024, 5, 1, 12, 3),
    ]


def test_five_fields_fire_at_second_zero_and_six_fields_start_with_seconds() -> None:
    assert parse_cron("5 4 * * *").seconds == (0,)
    assert upcoming("*/20 * * * * *", utc(2024, 5, 1, 12, 0, 0), count=4) == [
        utc(2024, 5, 1, 12, 0, 20),
        utc(2024, 5, 1, 12, 0, 40),
        utc(2024, 5, 1, 12, 1, 0),
        utc(2024, 5, 1, 12, 1, 20),
    ]
    assert upcoming("30 15 10 * * *", utc(2024, 5, 1, 12), count=2) == [
        utc(2024, 5, 2, 10, 15, 30),
        utc(2024, 5, 3, 10, 15, 30),
    ]


def test_lists_ranges_and_steps_expand_to_the_expected_values() -> None:
    cron = parse_cron("1,7,3 9-11 */10 1-12/5 0-6/3")
    assert cron.minutes == (1, 3, 7)
    assert cron.hours == (9, 10, 11)
    assert cron.days == (1, 11, 21, 31)
    assert cron.months == (1, 6, 11)
    assert cron.weekdays == (0, 3, 6)


def test_start_slash_step_runs_to_the_end_of_the_field() -> None:
    assert parse_cron("5/15 * * * *").minutes == (5, 20, 35, 50)
    assert parse_cron("0 22/1 * * *").hours == (22, 23)
    assert parse_cron("0 0 * * 1/2").weekdays == (1, 3, 5)  # Sunday is not added via 7


def test_step_larger_than_the_range_keeps_only_the_start() -> None:
    assert parse_cron("*/100 * * * *").minutes == (0,)


def test_month_and_weekday_names_are_case_insensitive() -> None:
    cron = parse_cron("0 0 * jan,Mar-MAY,dec mon-Wed,fri")
    assert cron.months == (1, 3, 4, 5, 12)
    assert cron.weekdays == (1, 2, 3, 5)
    assert parse_cron("0 0 * FEB-OCT/4 SUN").months == (2, 6, 10)


def test_sunday_is_both_zero_and_seven() -> None:
    assert parse_cron("0 0 * * 0").weekdays == (0,)
    assert parse_cron("0 0 * * 7").weekdays == (0,)
    assert parse_cron("0 0 * * 5-7").weekdays == (0, 5, 6)
    assert parse_cron("0 0 * * *").weekdays == (0, 1, 2, 3, 4, 5, 6)
    # 2024-06-02 is a Sunday.
    assert upcoming("0 9 * * 7", utc(2024, 5, 31)) == [utc(2024, 6, 2, 9)]


def test_leading_zeros_and_extra_whitespace_are_accepted() -> None:
    cron = parse_cron("  05\t07  *  * *  ")
    assert (cron.minutes, cron.hours) == ((5,), (7,))
    assert str(cron) == "05\t07  *  * *"


@pytest.mark.parametrize(
    ("macro", "fields"),
    [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
        ("@DAILY", "0 0 * * *"),
    ],
)
def test_macros_mean_their_five_field_form(macro: str, fields: str) -> None:
    cron, expanded = parse_cron(macro), parse_cron(fields)
    assert str(cron) == macro
    assert dataclasses.replace(cron, expression=fields) == expanded


def test_macros_fire_at_the_expected_instants() -> None:
    start = utc(2024, 5, 15, 10, 30)  # a Wednesday
    assert upcoming("@yearly", start) == [utc(2025, 1, 1)]
    assert upcoming("@monthly", start) == [utc(2024, 6, 1)]
    assert upcoming("@weekly", start) == [utc(2024, 5, 19)]
    assert upcoming("@daily", start) == [utc(2024, 5, 16)]
    assert upcoming("@hourly", start) == [utc(2024, 5, 15, 11)]


def test_str_gives_back_the_expression() -> None:
    assert str(parse_cron("*/5 1-3 * JAN mon")) == "*/5 1-3 * JAN mon"


def test_parsed_expressions_are_immutable_and_hashable() -> None:
    cron = parse_cron("0 8 * * 1-5")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cron.expression = "x"  # type: ignore[misc]
    assert {cron, parse_cron("0 8 * * 1-5")} == {cron}


# --- day-of-month / day-of-week --------------------------------------------------------------


def test_restricted_dom_and_dow_match_when_either_matches() -> None:
    # The 13th of each month, or any Friday. 2024-09-06 and 2024-09-13 are Fridays.
    assert upcoming("0 0 13 * FRI", utc(2024, 9, 1), count=4) == [
        utc(2024, 9, 6),
        utc(2024, 9, 13),
        utc(2024, 9, 20),
        utc(2024, 9, 27),
    ]
    assert upcoming("0 0 1,15 * MON", utc(2024, 4, 9), count=3) == [
        utc(2024, 4, 15),  # a Monday and the 15th: fires once
        utc(2024, 4, 22),
        utc(2024, 4, 29),
    ]


def test_unrestricted_dom_or_dow_means_both_must_match() -> None:
    # Only day-of-week restricted: every Monday.
    assert upcoming("0 0 * * MON", utc(2024, 4, 9), count=2) == [utc(2024, 4, 15), utc(2024, 4, 22)]
    # Only day-of-month restricted: the 15th, whatever the weekday.
    assert upcoming("0 0 15 * *", utc(2024, 4, 9), count=2) == [utc(2024, 4, 15), utc(2024, 5, 15)]


def test_a_field_starting_with_star_counts_as_unrestricted_for_the_or_rule() -> None:
    # ``*/2`` day-of-month with Monday: odd days that are Mondays (AND), as in Vixie cron.
    cron = parse_cron("0 0 */2 * 1")
    assert not cron.dom_restricted
    assert cron.dow_restricted
    assert upcoming("0 0 */2 * 1", utc(2024, 4, 1), count=3) == [
        utc(2024, 4, 15),
        utc(2024, 4, 29),
        utc(2024, 5, 13),
    ]


def test_leap_day_fires_only_on_february_29() -> None:
    assert upcoming("0 0 29 2 *", utc(2024, 3, 1), count=2) == [utc(2028, 2, 29), utc(2032, 2, 29)]
    # 2100 is not a leap year.
    assert upcoming("0 0 29 2 *", utc(2096, 3, 1)) == [utc(2104, 2, 29)]


def test_rare_slots_are_found_by_skipping_not_by_scanning_every_minute() -> None:
    began = time.perf_counter()
    slots = upcoming("0 0 29 2 *", utc(2000, 3, 1), tz=BERLIN, count=25)
    real_time = upcoming("* * 29 2 *", utc(2097, 1, 1), tz=BERLIN, count=1)
    assert time.perf_counter() - began < 1.0
    assert slots[0] == utc(2004, 2, 28, 23)
    assert slots[-1] == utc(2104, 2, 28, 23)
    assert real_time == [utc(2104, 2, 28, 23)]


def test_day_31_skips_short_months() -> None:
    assert upcoming("0 0 31 * *", utc(2024, 1, 31, 1), count=3) == [
        utc(2024, 3, 31),
        utc(2024, 5, 31),
        utc(2024, 7, 31),
    ]


# --- next_after contract ---------------------------------------------------------------------


def test_next_after_is_strictly_after() -> None:
    cron = parse_cron("0 12 * * *")
    assert cron.next_after(utc(2024, 5, 1, 12), ZULU) == utc(2024, 5, 2, 12)
    assert cron.next_after(utc(2024, 5, 1, 11, 59, 59), ZULU) == utc(2024, 5, 1, 12)
    just_before = utc(2024, 5, 1, 11, 59, 59) + timedelta(microseconds=999_999)
    assert cron.next_after(just_before, ZULU) == utc(2024, 5, 1, 12)
    just_after = utc(2024, 5, 1, 12) + timedelta(microseconds=1)
    assert cron.next_after(just_after, ZULU) == utc(2024, 5, 2, 12)


def test_next_after_accepts_any_aware_datetime_and_returns_utc() -> None:
    tokyo_noon = datetime(2024, 5, 1, 12, tzinfo=timezone(timedelta(hours=9)))
    slot = parse_cron("0 12 * * *").next_after(tokyo_noon, BERLIN)
    assert slot == utc(2024, 5, 1, 10)
    assert slot.tzinfo is UTC


def test_naive_datetimes_are_rejected() -> None:
    cron = parse_cron("* * * * *")
    with pytest.raises(InvalidArgument, match="after must be a timezone-aware datetime"):
        cron.next_after(datetime(2024, 1, 1), ZULU)  # noqa: DTZ001
    with pytest.raises(InvalidArgument, match="start must be a timezone-aware datetime"):
        cron.slots_between(datetime(2024, 1, 1), utc(2024, 1, 2), ZULU)  # noqa: DTZ001
    with pytest.raises(InvalidArgument, match="end must be a timezone-aware datetime"):
        cron.slots_between(utc(2024, 1, 1), datetime(2024, 1, 2), ZULU)  # noqa: DTZ001


def test_weekdays_at_eight_in_berlin_follow_local_time_across_seasons() -> None:
    # Friday 2024-01-12 noon UTC: next is Monday 08:00 CET = 07:00 UTC.
    assert upcoming("0 8 * * 1-5", utc(2024, 1, 12, 12), BERLIN, count=2) == [
        utc(2024, 1, 15, 7),
        utc(2024, 1, 16, 7),
    ]
    # Summer: 08:00 CEST = 06:00 UTC. Friday 2024-07-12 then Monday 2024-07-15.
    assert upcoming("0 8 * * 1-5", utc(2024, 7, 12), BERLIN, count=2) == [
        utc(2024, 7, 12, 6),
        utc(2024, 7, 15, 6),
    ]


# --- DST: fixed-hour expressions follow the wall clock ----------------------------------------


def test_berlin_spring_gap_fires_once_at_the_end_of_the_gap() -> None:
    # 2024-03-31: 02:00 CET jumps to 03:00 CEST (01:00 UTC); 02:30 does not exist.
    assert upcoming("30 2 * * *", utc(2024, 3, 30, 12), BERLIN, count=2) == [
        utc(2024, 3, 31, 1),  # 03:00 CEST
        utc(2024, 4, 1, 0, 30),  # 02:30 CEST
    ]


def test_berlin_fall_overlap_fires_once_at_the_first_occurrence() -> None:
    # 2024-10-27: 03:00 CEST falls back to 02:00 CET; 02:30 happens twice.
    assert upcoming("30 2 * * *", utc(2024, 10, 26, 12), BERLIN, count=2) == [
        utc(2024, 10, 27, 0, 30),  # 02:30 CEST, the first pass
        utc(2024, 10, 28, 1, 30),  # 02:30 CET the next day
    ]
    # Asking from inside the second pass does not fire the repeat.
    assert upcoming("30 2 * * *", utc(2024, 10, 27, 1, 15), BERLIN) == [utc(2024, 10, 28, 1, 30)]


def test_new_york_spring_gap_fires_once_at_the_end_of_the_gap() -> None:
    # 2024-03-10: 02:00 EST jumps to 03:00 EDT (07:00 UTC).
    assert upcoming("30 2 * * *", utc(2024, 3, 9, 12), NEW_YORK, count=2) == [
        utc(2024, 3, 10, 7),  # 03:00 EDT
        utc(2024, 3, 11, 6, 30),  # 02:30 EDT
    ]


def test_new_york_fall_overlap_fires_once_at_the_first_occurrence() -> None:
    # 2024-11-03: 02:00 EDT falls back to 01:00 EST; 01:30 happens twice.
    assert upcoming("30 1 * * *", utc(2024, 11, 2, 12), NEW_YORK, count=2) == [
        utc(2024, 11, 3, 5, 30),  # 01:30 EDT
        utc(2024, 11, 4, 6, 30),  # 01:30 EST the next day
    ]


def test_several_times_in_one_gap_collapse_into_one_slot() -> None:
    # 02:00, 02:30 and 03:00 all land on 03:00 CEST on the spring day.
    assert upcoming("0,30 2,3 * * *", utc(2024, 3, 30, 23), BERLIN, count=3) == [
        utc(2024, 3, 31, 1),
        utc(2024, 3, 31, 1, 30),  # 03:30 CEST
        utc(2024, 4, 1, 0),  # 02:00 CEST
    ]


def test_fixed_hour_daily_job_has_exactly_one_slot_on_each_dst_day() -> None:
    cron = parse_cron("30 2 * * *")
    for tz, day in [
        (BERLIN, (3, 31)),
        (BERLIN, (10, 27)),
        (NEW_YORK, (3, 10)),
        (NEW_YORK, (11, 3)),
    ]:
        start = datetime(2024, *day, tzinfo=tz)
        assert len(cron.slots_between(start, start + timedelta(days=1), tz)) == 1


# --- DST: every-hour expressions follow real time ---------------------------------------------


def test_every_15_minutes_in_berlin_stays_15_real_minutes_apart_through_the_gap() -> None:
    assert upcoming("*/15 * * * *", utc(2024, 3, 31, 0, 30), BERLIN, count=3) == [
        utc(2024, 3, 31, 0, 45),  # 01:45 CET
        utc(2024, 3, 31, 1, 0),  # 03:00 CEST
        utc(2024, 3, 31, 1, 15),  # 03:15 CEST
    ]


def test_every_15_minutes_in_berlin_fires_in_both_passes_of_the_overlap() -> None:
    assert upcoming("*/15 * * * *", utc(2024, 10, 27, 0, 30), BERLIN, count=6) == [
        utc(2024, 10, 27, 0, 45),  # 02:45 CEST
        utc(2024, 10, 27, 1, 0),  # 02:00 CET
        utc(2024, 10, 27, 1, 15),
        utc(2024, 10, 27, 1, 30),
        utc(2024, 10, 27, 1, 45),  # 02:45 CET
        utc(2024, 10, 27, 2, 0),  # 03:00 CET
    ]


def test_every_15_minutes_in_new_york_through_the_gap_and_the_overlap() -> None:
    assert upcoming("*/15 * * * *", utc(2024, 3, 10, 6, 40), NEW_YORK, count=2) == [
        utc(2024, 3, 10, 6, 45),  # 01:45 EST
        utc(2024, 3, 10, 7, 0),  # 03:00 EDT
    ]
    assert upcoming("*/15 * * * *", utc(2024, 11, 3, 5, 40), NEW_YORK, count=3) == [
        utc(2024, 11, 3, 5, 45),  # 01:45 EDT
        utc(2024, 11, 3, 6, 0),  # 01:00 EST
        utc(2024, 11, 3, 6, 15),  # 01:15 EST
    ]


def test_hourly_fires_every_real_hour_across_new_york_transitions() -> None:
    assert upcoming("0 * * * *", utc(2024, 11, 3, 4, 30), NEW_YORK, count=3) == [
        utc(2024, 11, 3, 5),  # 01:00 EDT
        utc(2024, 11, 3, 6),  # 01:00 EST
        utc(2024, 11, 3, 7),  # 02:00 EST
    ]
    assert upcoming("0 * * * *", utc(2024, 3, 10, 5, 30), NEW_YORK, count=2) == [
        utc(2024, 3, 10, 6),  # 01:00 EST
        utc(2024, 3, 10, 7),  # 03:00 EDT
    ]


@pytest.mark.parametrize(
    ("tz", "day", "next_day", "expected"),
    [
        (BERLIN, (2024, 3, 31), (2024, 4, 1), 92),  # 23-hour day
        (BERLIN, (2024, 10, 27), (2024, 10, 28), 100),  # 25-hour day
        (BERLIN, (2024, 6, 1), (2024, 6, 2), 96),
        (NEW_YORK, (2024, 3, 10), (2024, 3, 11), 92),
        (NEW_YORK, (2024, 11, 3), (2024, 11, 4), 100),
    ],
)
def test_every_15_minutes_counts_real_quarter_hours_in_a_local_day(
    tz: ZoneInfo, day: tuple[int, int, int], next_day: tuple[int, int, int], expected: int
) -> None:
    start, end = datetime(*day, tzinfo=tz), datetime(*next_day, tzinfo=tz)
    slots = parse_cron("*/15 * * * *").slots_between(start, end, tz)
    assert len(slots) == expected
    assert slots[-1] == end.astimezone(UTC)  # end is inclusive, start exclusive
    assert all(b - a == timedelta(minutes=15) for a, b in pairwise(slots))


# --- slots_between ---------------------------------------------------------------------------


def test_slots_between_excludes_start_and_includes_end() -> None:
    slots = parse_cron("0 * * * *").slots_between(utc(2024, 5, 1, 0), utc(2024, 5, 1, 3), ZULU)
    assert slots == [utc(2024, 5, 1, 1), utc(2024, 5, 1, 2), utc(2024, 5, 1, 3)]


def test_slots_between_counts_a_day_of_every_five_minutes() -> None:
    slots = parse_cron("*/5 * * * *").slots_between(utc(2024, 5, 1), utc(2024, 5, 2), ZULU)
    assert len(slots) == 288
    assert slots[0] == utc(2024, 5, 1, 0, 5)


def test_slots_between_returns_the_earliest_slots_up_to_the_limit() -> None:
    cron = parse_cron("* * * * *")
    slots = cron.slots_between(utc(2024, 5, 1), utc(2024, 5, 2), ZULU, limit=3)
    assert slots == [utc(2024, 5, 1, 0, 1), utc(2024, 5, 1, 0, 2), utc(2024, 5, 1, 0, 3)]
    assert cron.slots_between(utc(2024, 5, 1), utc(2024, 5, 2), ZULU, limit=0) == []
    assert len(cron.slots_between(utc(2024, 5, 1), utc(2024, 5, 2), ZULU)) == 1000


def test_slots_between_an_empty_or_reversed_window_is_empty() -> None:
    cron = parse_cron("* * * * *")
    assert cron.slots_between(utc(2024, 5, 1), utc(2024, 5, 1), ZULU) == []
    assert cron.slots_between(utc(2024, 5, 2), utc(2024, 5, 1), ZULU) == []


def test_slots_between_rejects_a_negative_limit() -> None:
    with pytest.raises(InvalidArgument, match="limit must be >= 0, got -1"):
        parse_cron("* * * * *").slots_between(utc(2024, 5, 1), utc(2024, 5, 2), ZULU, limit=-1)


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("", r"invalid cron expression '': it is empty"),
        ("   ", r"invalid cron expression '   ': it is empty"),
        ("* * * *", r"expected 5 fields .* got 4"),
        ("* * * * * * *", r"expected 5 fields .* got 7"),
        ("60 * * * *", r"minute field '60' has 60 out of range 0-59"),
        ("* 24 * * *", r"hour field '24' has 24 out of range 0-23"),
        ("* * 0 * *", r"day-of-month field '0' has 0 out of range 1-31"),
        ("* * 32 * *", r"day-of-month field '32' has 32 out of range 1-31"),
        ("* * * 13 *", r"month field '13' has 13 out of range 1-12"),
        ("* * * 0 *", r"month field '0' has 0 out of range 1-12"),
        ("* * * * 8", r"day-of-week field '8' has 8 out of range 0-7"),
        ("60 * * * * *", r"second field '60' has 60 out of range 0-59"),
        ("* * * FOO *", r"month field 'FOO' has an unknown value 'FOO'"),
        ("* * * * MONDAY", r"day-of-week field 'MONDAY' has an unknown value 'MONDAY'"),
        ("* * * * JAN", r"day-of-week field 'JAN' has an unknown value 'JAN'"),
        ("MON * * * *", r"minute field 'MON' has an unknown value 'MON'"),
        ("-5 * * * *", r"minute field '-5' has an empty value"),
        ("1- * * * *", r"minute field '1-' has an empty value"),
        ("1,,2 * * * *", r"minute field '1,,2' has an empty list item"),
        ("1, * * * *", r"minute field '1,' has an empty list item"),
        ("*/0 * * * *", r"minute field '\*/0' has a step of 0"),
        ("*/x * * * *", r"minute field '\*/x' has an invalid step 'x'"),
        ("*/ * * * *", r"minute field '\*/' has an invalid step ''"),
        ("1-5/2/3 * * * *", r"has an invalid step '2/3'"),
        ("30-10 * * * *", r"minute field '30-10' has a reversed range '30-10'"),
        ("0 0 * * FRI-MON", r"day-of-week field 'FRI-MON' has a reversed range"),
        ("1-2-3 * * * *", r"minute field '1-2-3' has an unknown value '2-3'"),
        ("@reboot", r"invalid cron expression '@reboot': unknown macro"),
        ("@daily 5", r"unknown macro"),
        ("0 0 30 2 *", r"'0 0 30 2 \*': it can never fire"),
        ("0 0 31 4,6,9,11 *", r"it can never fire"),
        ("0 0 31 FEB *", r"it can never fire"),
    ],
)
def test_bad_expressions_raise_invalid_cron_naming_the_problem(expr: str, message: str) -> None:
    with pytest.raises(InvalidCron, match=message):
        parse_cron(expr)


def test_invalid_cron_is_a_value_error_and_names_the_expression() -> None:
    with pytest.raises(ValueError, match=r"invalid cron expression '\* 99 \* \* \*'"):
        parse_cron("* 99 * * *")


def test_possible_rare_dates_are_not_rejected() -> None:
    assert parse_cron("0 0 31 4,5 *").months == (4, 5)
    # Both day fields restricted: Mondays in February fire even though Feb 30 never exists.
    assert upcoming("0 0 30 2 MON", utc(2024, 2, 1)) == [utc(2024, 2, 5)]


# --- time zones ------------------------------------------------------------------------------


def test_load_zone_returns_the_iana_zone() -> None:
    assert load_zone("Europe/Berlin") == BERLIN
    assert load_zone("UTC").utcoffset(datetime(2024, 1, 1)) == timedelta(0)  # noqa: DTZ001


@pytest.mark.parametrize("name", ["Mars/Olympus", "Europe", "", "../etc/passwd", "/etc/localtime"])
def test_load_zone_rejects_unknown_names(name: str) -> None:
    with pytest.raises(InvalidCron, match=r"unknown time zone"):
        load_zone(name)
