"""Business calendars from their configuration (``BusinessCalendarConfig``).

Public holidays come from the ``holidays`` package (country + subdivision), expanded a year at
a time as dates are asked for; custom dates add to them; overrides replace a date's hours.
"""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import holidays

from insightdesk.shared.contracts import BusinessCalendarConfig
from insightdesk.sla.business_time import BusinessCalendar, always_open

__all__ = ["UnknownHolidayRegion", "build_calendar", "check_holiday_region", "twenty_four_seven"]


class UnknownHolidayRegion(ValueError):
    """The ``holidays`` package knows no such country or subdivision."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def check_holiday_region(country: str | None, subdivision: str | None) -> None:
    """Raise :class:`UnknownHolidayRegion` (naming the field) for an unknown region."""
    if country is None:
        return
    if country.upper() not in holidays.list_supported_countries():
        raise UnknownHolidayRegion("holiday_country", f"no public holidays known for {country!r}")
    if subdivision is not None:
        try:
            holidays.country_holidays(country.upper(), subdiv=subdivision)
        except NotImplementedError as exc:
            raise UnknownHolidayRegion(
                "holiday_subdivision", f"{country} has no subdivision {subdivision!r}"
            ) from exc


class _Holidays:
    """Public holidays of a region plus custom dates, as a predicate."""

    def __init__(self, country: str | None, subdivision: str | None, custom: set[date]) -> None:
        self.custom = custom
        self.public = (
            holidays.country_holidays(country.upper(), subdiv=subdivision)
            if country is not None
            else None
        )

    def __call__(self, day: date) -> bool:
        return day in self.custom or (self.public is not None and day in self.public)


def build_calendar(config: BusinessCalendarConfig) -> BusinessCalendar:
    check_holiday_region(config.holiday_country, config.holiday_subdivision)
    week: dict[int, list[tuple[int, int]]] = {}
    for day, intervals in config.hours.items():
        week[day.number] = sorted(i.span() for i in intervals)
    overrides = {o.date: sorted(i.span() for i in o.intervals) for o in config.overrides}
    return BusinessCalendar(
        zone=ZoneInfo(config.time_zone),
        week=week,
        is_holiday=_Holidays(
            config.holiday_country, config.holiday_subdivision, set(config.custom_holidays)
        ),
        overrides=overrides,
    )


def twenty_four_seven() -> BusinessCalendar:
    """The calendar of calendar-time targets and of policies without business hours."""
    return always_open()
