"""Why ``cron.py`` keeps its own parser: cronsim (a maintained cron library) on the DST cases
documented in :mod:`insightdesk.shared.queue.cron`.

cronsim agrees on every documented case but one: asked for the next slot of ``30 2 * * *`` from
inside the second pass of Berlin's fall-back hour, it answers the FIRST pass — an instant before
the one it was asked from. A scheduler that fires "the next slot after now" would fire that slot
again (or go back in time); ours answers the next day. If a cronsim release fixes it, the last
test fails and cron.py can be replaced.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from cronsim import CronSim

from insightdesk.shared.queue.cron import parse_cron

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def ours(expr: str, after: datetime, tz: ZoneInfo, count: int) -> list[datetime]:
    cron, found = parse_cron(expr), []
    for _ in range(count):
        after = cron.next_after(after, tz)
        found.append(after)
    return found


def cronsim(expr: str, after: datetime, tz: ZoneInfo, count: int) -> list[datetime]:
    slots = CronSim(expr, after.astimezone(tz))
    return [next(slots).astimezone(UTC) for _ in range(count)]


DOCUMENTED = [
    ("30 2 * * *", utc(2024, 3, 30, 12), BERLIN, 2),  # spring gap: end of the gap
    ("30 2 * * *", utc(2024, 10, 26, 12), BERLIN, 2),  # fall overlap: first pass
    ("30 2 * * *", utc(2024, 3, 9, 12), NEW_YORK, 2),
    ("30 1 * * *", utc(2024, 11, 2, 12), NEW_YORK, 2),
    ("0,30 2,3 * * *", utc(2024, 3, 30, 23), BERLIN, 3),  # gap times collapse
    ("*/15 * * * *", utc(2024, 3, 31, 0, 30), BERLIN, 3),  # every-hour: real time
    ("*/15 * * * *", utc(2024, 10, 27, 0, 30), BERLIN, 6),
    ("0 * * * *", utc(2024, 11, 3, 4, 30), NEW_YORK, 3),
    ("0 * * * *", utc(2024, 3, 10, 5, 30), NEW_YORK, 2),
]


@pytest.mark.parametrize(("expr", "after", "tz", "count"), DOCUMENTED)
def test_cronsim_agrees_on_the_documented_dst_cases(
    expr: str, after: datetime, tz: ZoneInfo, count: int
) -> None:
    assert cronsim(expr, after, tz, count) == ours(expr, after, tz, count)


def test_cronsim_goes_back_in_time_from_inside_the_repeated_hour() -> None:
    inside_second_pass = utc(2024, 10, 27, 1, 15)  # 02:15 CET, after 02:30 CEST was fired
    assert ours("30 2 * * *", inside_second_pass, BERLIN, 1) == [utc(2024, 10, 28, 1, 30)]
    [theirs] = cronsim("30 2 * * *", inside_second_pass, BERLIN, 1)
    assert theirs == utc(2024, 10, 27, 0, 30)  # 02:30 CEST: before the instant asked from
    assert theirs < inside_second_pass
