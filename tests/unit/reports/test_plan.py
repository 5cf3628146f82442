"""Which organizations an hourly tick makes due: each at its own local hour, daylight saving
changes included."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from insightdesk.reports.digest import DAILY, WEEKLY, Organization, ReportPlan, period, plan

AUCKLAND = Organization(uuid.UUID(int=1), "Kiwi", "Pacific/Auckland")
NEW_YORK = Organization(uuid.UUID(int=2), "Big Apple", "America/New_York")


def hourly_ticks(start: datetime, hours: int) -> list[datetime]:
    return [start + timedelta(hours=h) for h in range(hours)]


def plans_over(
    kind: str, org: Organization, day: date, hour: int = 8
) -> list[tuple[datetime, ReportPlan]]:
    """Every plan the hourly ticks of the UTC days around ``day`` create for ``org``."""
    start = datetime.combine(day - timedelta(days=2), datetime.min.time(), tzinfo=UTC)
    found: list[tuple[datetime, ReportPlan]] = []
    for tick in hourly_ticks(start, 5 * 24):
        found.extend((tick, p) for p in plan(kind, tick, [org], hour=hour))
    return found


# The DST changes of 2026: Auckland ends DST on 5 April, starts it on 27 September;
# New York starts DST on 8 March and ends it on 1 November.
@pytest.mark.parametrize(
    ("org", "day"),
    [
        (AUCKLAND, date(2026, 4, 5)),
        (AUCKLAND, date(2026, 9, 27)),
        (NEW_YORK, date(2026, 3, 8)),
        (NEW_YORK, date(2026, 11, 1)),
    ],
)
def test_the_digest_goes_out_at_local_eight_on_a_dst_change_day(
    org: Organization, day: date
) -> None:
    found = plans_over(DAILY, org, day)
    tz = ZoneInfo(org.time_zone)
    on_day = [(t, p) for t, p in found if t.astimezone(tz).date() == day]
    assert len(on_day) == 1
    tick, job = on_day[0]
    local = tick.astimezone(tz)
    assert (local.hour, local.minute) == (8, 0)
    assert job.period_start == day - timedelta(days=1)
    # one plan per local day over the whole span, no day twice
    days = [t.astimezone(tz).date() for t, _ in found]
    assert len(days) == len(set(days))
    # the period of the day after a DST change is that day's real length (23 or 25 hours)
    span = period(day, 1, tz)
    assert span.end - span.start in {timedelta(hours=23), timedelta(hours=25)}


def test_organizations_in_different_zones_are_due_at_their_own_eight() -> None:
    tick = datetime(2026, 3, 9, 12, 0, tzinfo=UTC)  # 08:00 in New York (EDT), 01:00 Auckland
    assert [p.organization_id for p in plan(DAILY, tick, [AUCKLAND, NEW_YORK], hour=8)] == [
        NEW_YORK.id
    ]
    tick = datetime(2026, 3, 8, 19, 0, tzinfo=UTC)  # 08:00 Monday in Auckland (NZDT)
    assert [p.organization_id for p in plan(DAILY, tick, [AUCKLAND, NEW_YORK], hour=8)] == [
        AUCKLAND.id
    ]


def test_a_digest_hour_skipped_by_the_clock_change_is_sent_on_the_next_tick() -> None:
    found = plans_over(DAILY, NEW_YORK, date(2026, 3, 8), hour=2)  # 02:00 does not exist
    tz = ZoneInfo(NEW_YORK.time_zone)
    on_day = [t.astimezone(tz) for t, _ in found if t.astimezone(tz).date() == date(2026, 3, 8)]
    assert [(t.hour, t.minute) for t in on_day] == [(3, 0)]


def test_a_repeated_hour_plans_the_same_job_twice_which_the_job_id_deduplicates() -> None:
    found = plans_over(DAILY, NEW_YORK, date(2026, 11, 1), hour=1)  # 01:00 happens twice
    tz = ZoneInfo(NEW_YORK.time_zone)
    on_day = [p for t, p in found if t.astimezone(tz).date() == date(2026, 11, 1)]
    assert len(on_day) == 2
    assert on_day[0].job_id == on_day[1].job_id


def test_the_weekly_report_goes_out_on_local_monday_for_the_seven_days_before() -> None:
    found = plans_over(WEEKLY, AUCKLAND, date(2026, 9, 28))
    tz = ZoneInfo(AUCKLAND.time_zone)
    assert len(found) == 1
    tick, job = found[0]
    assert tick.astimezone(tz).weekday() == 0
    assert job.period_start == date(2026, 9, 21)
    span = period(job.period_start, 7, tz)
    assert span.end - span.start == timedelta(days=7) - timedelta(hours=1)  # DST began


def test_job_ids_differ_per_kind_organization_and_period() -> None:
    a = ReportPlan(DAILY, AUCKLAND.id, date(2026, 1, 1))
    assert a.job_id == ReportPlan(DAILY, AUCKLAND.id, date(2026, 1, 1)).job_id
    assert (
        len(
            {
                a.job_id,
                ReportPlan(WEEKLY, AUCKLAND.id, date(2026, 1, 1)).job_id,
                ReportPlan(DAILY, NEW_YORK.id, date(2026, 1, 1)).job_id,
                ReportPlan(DAILY, AUCKLAND.id, date(2026, 1, 2)).job_id,
            }
        )
        == 4
    )


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown report kind"):
        plan("monthly", datetime(2026, 1, 1, tzinfo=UTC), [AUCKLAND], hour=8)
