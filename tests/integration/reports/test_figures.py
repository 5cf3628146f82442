"""The digest and weekly figures of a seeded organization of 10,000 tickets equal a brute-force
reference over the raw rows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest

from insightdesk.reports.digest import Figures, period, zone
from insightdesk.reports.store import PgReportStore
from tests.integration.reports.reference import reference
from tests.integration.reports.seed import load_seed, make_seed

NOW = datetime(2026, 3, 30, 6, 0, tzinfo=UTC)  # 08:00 in Berlin, the day after DST began


def _as_dict(f: Figures) -> dict[str, object]:
    return {
        "new": f.new,
        "solved": f.solved,
        "reopened": f.reopened,
        "closed": f.closed,
        "unassigned": f.unassigned,
        "backlog_by_status": f.backlog_by_status,
        "backlog_by_age": f.backlog_by_age,
        "first_response_median": f.first_response_median,
        "first_response_p90": f.first_response_p90,
        "resolution_median": f.resolution_median,
        "resolution_p90": f.resolution_p90,
        "sla": f.sla,
        "sla_breaches": f.sla_breaches,
        "at_risk": f.at_risk,
        "agents": [(a.name, a.open_assigned, a.replies, a.solved) for a in f.agents],
    }


def _close(actual: dict[str, object], expected: dict[str, object]) -> None:
    assert actual.keys() == expected.keys()
    for key, value in expected.items():
        if isinstance(value, float):
            assert actual[key] == pytest.approx(value, rel=1e-9), key
        else:
            assert actual[key] == value, key


@pytest.mark.parametrize(("first", "days"), [(date(2026, 3, 29), 1), (date(2026, 3, 23), 7)])
async def test_figures_equal_the_brute_force_reference(
    store: PgReportStore, reports_dsn: str, first: date, days: int
) -> None:
    seed = make_seed(10_000, now=NOW, time_zone="Europe/Berlin")
    async with await psycopg.AsyncConnection.connect(reports_dsn, autocommit=True) as conn:
        await load_seed(conn, seed)
    span = period(first, days, zone("Europe/Berlin"))
    if days == 1:  # the DST day in Berlin has 23 hours
        assert span.end - span.start == timedelta(hours=23)
    figures = await store.figures(seed.organization_id, span, NOW)
    expected = reference(seed, span.start, span.end, NOW)
    assert expected["new"] > 100  # the seed really exercises the window
    assert expected["solved"] > 10
    assert expected["sla"]
    _close(_as_dict(figures), expected)


async def test_trend_sums_per_local_day(store: PgReportStore, reports_dsn: str) -> None:
    seed = make_seed(3_000, now=NOW, time_zone="America/New_York")
    async with await psycopg.AsyncConnection.connect(reports_dsn, autocommit=True) as conn:
        await load_seed(conn, seed)
    tz = zone("America/New_York")
    span = period(date(2026, 3, 21), 7, tz)
    trend = await store.trend(seed.organization_id, span, "America/New_York")
    assert [d for d, _, _ in trend] == [date(2026, 3, 21) + timedelta(days=i) for i in range(7)]
    for day, new, solved in trend:
        one = period(day, 1, tz)
        expected = reference(seed, one.start, one.end, NOW)
        assert (new, solved) == (expected["new"], expected["solved"]), day
    histogram = await store.response_histogram(seed.organization_id, span)
    waits = [
        (t["first_response_at"] - t["created_at"]).total_seconds() / 60
        for t in seed.tickets
        if t["first_response_at"] is not None and span.start <= t["first_response_at"] < span.end
    ]
    bounds = [15, 60, 240, 1440]
    expected_hist = [0] * 5
    for w in waits:
        expected_hist[sum(1 for b in bounds if w >= b)] += 1
    assert histogram == expected_hist
