"""Reconciliation: what to change in the engine's schedule table so it matches the settings.

The scheduler service owns the engine's schedule table of its queue schema. A schedule that is
wanted and missing or different is (re)written — the engine keeps ``last_slot`` on a rewrite,
so a changed schedule takes effect at its next slot; a row no longer wanted (removed from the
settings, or disabled) is retired. Pure: compares values, does no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from insightdesk.scheduler.schedules import ScheduleSpec


@dataclass(frozen=True, slots=True)
class Plan:
    write: tuple[ScheduleSpec, ...]
    retire: tuple[str, ...]
    unchanged: tuple[str, ...]


def engine_row(spec: ScheduleSpec) -> dict[str, Any]:
    """The engine columns a schedule defines (what a rewrite would store)."""
    return {
        "queue": spec.engine_queue,
        "cron": spec.cron,
        "timezone": spec.timezone,
        "data": spec.engine_data,
        "options": spec.job_options().to_wire(),
        "missed": spec.missed,
        "grace": float(spec.grace),
    }


def differs(spec: ScheduleSpec, row: Mapping[str, Any]) -> bool:
    wanted = engine_row(spec)
    return any(
        (row.get(key) or {}) != value if key in {"data", "options"} else row.get(key) != value
        for key, value in wanted.items()
    )


def plan(desired: Sequence[ScheduleSpec], existing: Mapping[str, Mapping[str, Any]]) -> Plan:
    """``existing`` maps names to the engine's rows (as ``CronScheduler.schedules`` lists them)."""
    enabled = {s.name: s for s in desired if s.enabled}
    write = tuple(
        s for s in enabled.values() if s.name not in existing or differs(s, existing[s.name])
    )
    written = {s.name for s in write}
    return Plan(
        write=write,
        retire=tuple(sorted(name for name in existing if name not in enabled)),
        unchanged=tuple(sorted(name for name in enabled if name not in written)),
    )
