"""Every digest figure computed again by brute force over a seed's raw rows (plain Python,
no SQL), to hold the store's aggregate statements to."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from tests.integration.reports.seed import Seed


def percentile(values: list[float], p: float) -> float | None:
    """Linear interpolation between closest ranks (PostgreSQL's percentile_cont)."""
    if not values:
        return None
    ordered = sorted(values)
    pos = p * (len(ordered) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _within(at: datetime | None, start: datetime, end: datetime) -> bool:
    return at is not None and start <= at < end


def reference(seed: Seed, start: datetime, end: datetime, now: datetime) -> dict[str, Any]:
    tickets = seed.tickets
    events = [e for e in seed.events if _within(e["occurred_at"], start, end)]
    backlog = [t for t in tickets if t["status"] in ("open", "pending")]

    def distinct(pred: Any) -> int:
        return len({e["ticket_id"] for e in events if pred(e)})

    def minutes(a: datetime, b: datetime) -> float:
        return (b - a).total_seconds() / 60.0

    first = [
        minutes(t["created_at"], t["first_response_at"])
        for t in tickets
        if _within(t["first_response_at"], start, end)
    ]
    resolution = [
        minutes(t["created_at"], t["resolved_at"])
        for t in tickets
        if _within(t["resolved_at"], start, end)
    ]
    ages: dict[str, int] = {}
    for t in backlog:
        age = now - t["created_at"]
        bucket = (
            "< 1 day"
            if age < timedelta(days=1)
            else "1-3 days"
            if age < timedelta(days=3)
            else "3-7 days"
            if age < timedelta(days=7)
            else "> 7 days"
        )
        ages[bucket] = ages.get(bucket, 0) + 1
    statuses: dict[str, int] = {}
    for t in backlog:
        statuses[t["status"]] = statuses.get(t["status"], 0) + 1
    by_id = {t["id"]: t for t in tickets}
    sla: dict[str, tuple[int, int]] = {}
    for s in seed.sla:
        if _within(s["due_at"], start, end) and (
            s["breached_at"] is not None or s["met_at"] is not None or s["due_at"] < now
        ):
            met, breached = sla.get(s["target"], (0, 0))
            if s["breached_at"] is None:
                met += 1
            else:
                breached += 1
            sla[s["target"]] = (met, breached)
    at_risk = sum(
        1
        for s in seed.sla
        if now <= s["due_at"] < now + timedelta(hours=24)
        and s["breached_at"] is None
        and s["met_at"] is None
        and by_id[s["ticket_id"]]["status"] in ("open", "pending")
        and not (s["target"].startswith("first") and by_id[s["ticket_id"]]["first_response_at"])
    )
    agents = []
    for aid, name in sorted(seed.agents, key=lambda a: (a[1], a[0])):
        agents.append(
            (
                name,
                sum(1 for t in backlog if t["assignee_id"] == aid),
                sum(1 for e in events if e["actor_id"] == aid and e["kind"] == "replied"),
                distinct(
                    lambda e, aid=aid: (
                        e["actor_id"] == aid
                        and e["kind"] == "status_changed"
                        and e["new_value"] == "resolved"
                    )
                ),
            )
        )
    return {
        "new": sum(1 for t in tickets if _within(t["created_at"], start, end)),
        "solved": distinct(
            lambda e: e["kind"] == "status_changed" and e["new_value"] == "resolved"
        ),
        "reopened": distinct(
            lambda e: (
                e["kind"] == "status_changed"
                and e["old_value"] in ("resolved", "closed")
                and e["new_value"] in ("open", "pending")
            )
        ),
        "closed": distinct(lambda e: e["new_value"] == "closed"),
        "unassigned": sum(1 for t in backlog if t["assignee_id"] is None),
        "backlog_by_status": statuses,
        "backlog_by_age": ages,
        "first_response_median": percentile(first, 0.5),
        "first_response_p90": percentile(first, 0.9),
        "resolution_median": percentile(resolution, 0.5),
        "resolution_p90": percentile(resolution, 0.9),
        "sla": sla,
        "sla_breaches": sum(1 for s in seed.sla if _within(s["breached_at"], start, end)),
        "at_risk": at_risk,
        "agents": agents,
    }
