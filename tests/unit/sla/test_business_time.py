"""Business time: the two primitives, DST, holidays, overrides, and their algebra (hypothesis)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from insightdesk.shared.contracts import BusinessCalendarConfig
from insightdesk.sla.business_time import BusinessCalendar, NoBusinessTime, always_open
from insightdesk.sla.calendars import UnknownHolidayRegion, build_calendar

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday")


def office(zone: str = "Europe/Berlin", **extra: object) -> BusinessCalendar:
    """Mon-Fri 09:00-12:00 and 13:00-17:00 (seven hours a day)."""
    hours = {
        d: [{"start": "09:00", "end": "12:00"}, {"start": "13:00", "end": "17:00"}]
        for d in WEEKDAYS
    }
    return build_calendar(
        BusinessCalendarConfig.model_validate(
            {"name": "office", "time_zone": zone, "hours": hours, **extra}
        )
    )


def night_shift(zone: str) -> BusinessCalendar:
    """Every day 22:00-08:00 (runs past midnight, across the DST switch at 02:00/03:00)."""
    hours = {d: [{"start": "22:00", "end": "08:00"}] for d in (*WEEKDAYS, "saturday", "sunday")}
    return build_calendar(
        BusinessCalendarConfig.model_validate({"name": "night", "time_zone": zone, "hours": hours})
    )


def local(zone: ZoneInfo, year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=zone)


def test_due_at_skips_lunch_nights_and_weekends() -> None:
    cal = office()
    friday_1630 = local(BERLIN, 2026, 3, 13, 16, 30)
    # 30 minutes on Friday, then Monday 09:00 + 90 minutes
    assert cal.due_at(friday_1630, 120) == local(BERLIN, 2026, 3, 16, 10, 30)
    assert cal.business_minutes(friday_1630, local(BERLIN, 2026, 3, 16, 10, 30)) == 120
    # 11:30 + 60 min crosses lunch
    assert cal.due_at(local(BERLIN, 2026, 3, 16, 11, 30), 60) == local(BERLIN, 2026, 3, 16, 13, 30)


def test_starting_outside_business_hours_counts_from_the_next_opening() -> None:
    cal = office()
    saturday = local(BERLIN, 2026, 3, 14, 10, 0)
    assert cal.due_at(saturday, 1) == local(BERLIN, 2026, 3, 16, 9, 1)
    assert cal.business_minutes(saturday, local(BERLIN, 2026, 3, 16, 9, 0)) == 0


def test_public_holidays_and_custom_dates_are_closed() -> None:
    cal = office(holiday_country="DE", holiday_subdivision="BY", custom_holidays=["2026-01-07"])
    # Tue 2026-01-06 is Epiphany in Bavaria, Wed 01-07 a custom holiday
    monday_1630 = local(BERLIN, 2026, 1, 5, 16, 30)
    assert cal.due_at(monday_1630, 60) == local(BERLIN, 2026, 1, 8, 9, 30)
    # without the region, Tuesday is a working day
    assert office().due_at(monday_1630, 60) == local(BERLIN, 2026, 1, 6, 9, 30)


def test_a_partial_day_override_replaces_the_weekday_hours() -> None:
    cal = office(
        overrides=[{"date": "2026-12-24", "intervals": [{"start": "09:00", "end": "10:00"}]}]
    )
    thursday = local(BERLIN, 2026, 12, 24, 9, 30)
    assert cal.due_at(thursday, 60) == local(BERLIN, 2026, 12, 25, 9, 30)
    assert (
        cal.business_minutes(local(BERLIN, 2026, 12, 24, 0, 0), local(BERLIN, 2026, 12, 25, 0, 0))
        == 60
    )


def test_an_override_opens_a_holiday() -> None:
    cal = office(
        holiday_country="DE",
        overrides=[{"date": "2026-12-25", "intervals": [{"start": "10:00", "end": "11:00"}]}],
    )
    assert cal.due_at(local(BERLIN, 2026, 12, 24, 16, 30), 60) == local(
        BERLIN, 2026, 12, 25, 10, 30
    )


@pytest.mark.parametrize(
    ("zone", "spring", "autumn"),
    [
        (BERLIN, date(2026, 3, 29), date(2026, 10, 25)),
        (NEW_YORK, date(2026, 3, 8), date(2026, 11, 1)),
    ],
)
def test_dst_nights_are_measured_as_they_happen(zone: ZoneInfo, spring: date, autumn: date) -> None:
    cal = night_shift(zone.key)
    # the night into the switch day: 22:00-08:00 is 9 real hours in spring, 11 in autumn
    for day, hours in ((spring, 9), (autumn, 11)):
        eve = datetime.combine(day - timedelta(days=1), datetime.min.time(), tzinfo=zone)
        start = eve.replace(hour=22)
        end = datetime.combine(day, datetime.min.time(), tzinfo=zone).replace(hour=8)
        assert cal.business_time(start, end) == timedelta(hours=hours)
        assert cal.due_at(start, hours * 60) == end.astimezone(UTC)
        # and one minute more lands in the next night
        next_night = datetime.combine(day, datetime.min.time(), tzinfo=zone).replace(hour=22)
        assert cal.due_at(start, hours * 60 + 1) == next_night + timedelta(minutes=1)


def test_a_holiday_on_a_dst_day() -> None:
    # Sunday 2026-03-29 (spring forward in Berlin) declared a holiday: the night shift that
    # starts on it is closed, the one that started the evening before still runs through it
    zone = "Europe/Berlin"
    hours = {d: [{"start": "22:00", "end": "08:00"}] for d in (*WEEKDAYS, "saturday", "sunday")}
    cal = build_calendar(
        BusinessCalendarConfig.model_validate(
            {"name": "n", "time_zone": zone, "hours": hours, "custom_holidays": ["2026-03-29"]}
        )
    )
    saturday_22 = local(BERLIN, 2026, 3, 28, 22, 0)
    monday_08 = local(BERLIN, 2026, 3, 30, 8, 0)
    assert cal.business_time(saturday_22, monday_08) == timedelta(hours=9)


def test_twenty_four_seven_is_plain_time_across_dst() -> None:
    cal = always_open("Europe/Berlin")
    a = local(BERLIN, 2026, 3, 28, 12, 0)
    b = local(BERLIN, 2026, 3, 29, 12, 0)
    assert cal.business_time(a, b) == timedelta(hours=23)
    assert cal.due_at(a, 23 * 60) == b


def test_an_empty_calendar_has_no_deadline() -> None:
    cal = build_calendar(BusinessCalendarConfig(name="closed"))
    with pytest.raises(NoBusinessTime):
        cal.due_at(datetime(2026, 1, 1, tzinfo=UTC), 1)


def test_naive_instants_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        office().due_at(datetime(2026, 1, 1), 5)  # noqa: DTZ001


def test_unknown_holiday_regions_name_the_field() -> None:
    with pytest.raises(UnknownHolidayRegion) as country:
        office(holiday_country="XX")
    assert country.value.field == "holiday_country"
    with pytest.raises(UnknownHolidayRegion) as subdivision:
        office(holiday_country="DE", holiday_subdivision="ZZ")
    assert subdivision.value.field == "holiday_subdivision"


# ---------------------------------------------------------------------- properties

CALENDARS = {
    "office-berlin": office(holiday_country="DE"),
    "office-new-york": office("America/New_York", holiday_country="US"),
    "night-berlin": night_shift("Europe/Berlin"),
    "night-new-york": night_shift("America/New_York"),
}
instants = st.datetimes(
    min_value=datetime(2025, 1, 1),  # noqa: DTZ001  # hypothesis wants naive bounds
    max_value=datetime(2027, 12, 31),  # noqa: DTZ001
    timezones=st.just(UTC),
)
minutes = st.integers(min_value=0, max_value=20_000)


@settings(max_examples=150, deadline=None)
@given(name=st.sampled_from(sorted(CALENDARS)), start=instants, m=minutes)
def test_business_minutes_undoes_due_at(name: str, start: datetime, m: int) -> None:
    cal = CALENDARS[name]
    assert cal.business_time(start, cal.due_at(start, m)) == timedelta(minutes=m)
    assert cal.business_minutes(start, cal.due_at(start, m)) == m


@settings(max_examples=100, deadline=None)
@given(name=st.sampled_from(sorted(CALENDARS)), start=instants, m=minutes, more=minutes)
def test_due_at_is_monotonic_in_minutes(name: str, start: datetime, m: int, more: int) -> None:
    cal = CALENDARS[name]
    assert cal.due_at(start, m) <= cal.due_at(start, m + more)


@settings(max_examples=100, deadline=None)
@given(
    name=st.sampled_from(sorted(CALENDARS)),
    a=instants,
    steps=st.tuples(st.integers(0, 10**7), st.integers(0, 10**7)),
)
def test_business_time_adds_up_over_splits(name: str, a: datetime, steps: tuple[int, int]) -> None:
    cal = CALENDARS[name]
    b = a + timedelta(seconds=steps[0])
    c = b + timedelta(seconds=steps[1])
    assert cal.business_time(a, c) == cal.business_time(a, b) + cal.business_time(b, c)


@settings(max_examples=100, deadline=None)
@given(
    zone=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"]),
    a=instants,
    seconds=st.integers(0, 10**7),
)
def test_a_24x7_calendar_equals_plain_time(zone: str, a: datetime, seconds: int) -> None:
    cal = always_open(zone)
    b = a + timedelta(seconds=seconds)
    assert cal.business_time(a, b) == b - a
    assert cal.due_at(a, timedelta(seconds=seconds)) == b
