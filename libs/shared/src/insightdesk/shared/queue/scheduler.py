"""Cron schedules: exactly one job per (schedule, slot), however many schedulers run.

A schedule stores the last slot it fired. A tick computes the slots due since then and, for
each slot it decides to fire, advances ``last_slot`` and inserts the job in one transaction. The
``UPDATE ... WHERE last_slot < slot`` takes the schedule's row lock, so concurrent schedulers
serialise on it and every one but the first finds the slot already taken; the job id is also
derived from (schedule, slot), a second guard.

Missed ticks (scheduler down, or slow): ``missed="skip"`` fires only the latest due slot and
only while it is at most ``grace`` seconds old; ``missed="catch_up"`` fires every missed slot not
older than ``grace``, oldest first. Slots older than that are passed over, never fired late.

The tick loop of :meth:`CronScheduler.start` survives any failure of a tick (a lock timeout, a
terminated backend, a bug): logged with its exception and retried after a capped backoff.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from insightdesk.shared.errors import InvalidArgument, QueueError
from insightdesk.shared.queue.cron import load_zone, parse_cron
from insightdesk.shared.queue.options import MAX_DURATION, JobOptions, validate_name
from insightdesk.shared.queue.payloads import to_json
from insightdesk.shared.queue.store import PgStore
from insightdesk.shared.queue.tasks import Loops, cancel_and_wait, every

if TYPE_CHECKING:
    from insightdesk.shared.queue.client import QueueClient

log = logging.getLogger(__name__)

_SLOT_NAMESPACE = uuid.UUID("6f1c1b1e-5a43-4f7e-9a59-2f0d6c0f1a11")
MISSED_POLICIES = ("skip", "catch_up")
_SCHEDULE_OPTION_FIELDS = (
    "priority",
    "retry_limit",
    "retry_delay",
    "retry_backoff",
    "retry_delay_max",
    "expire_in",
    "heartbeat",
    "retention",
    "delete_after",
    "dead_letter",
    "singleton_key",
)


@dataclass(frozen=True, slots=True)
class Fired:
    schedule: str
    slot: datetime
    job_id: uuid.UUID | None


def slot_job_id(schema: str, schedule: str, slot: datetime) -> uuid.UUID:
    return uuid.uuid5(_SLOT_NAMESPACE, f"{schema}:{schedule}:{slot.isoformat()}")


def slots_to_fire(due: list[datetime], now: datetime, missed: str, grace: float) -> list[datetime]:
    """Which of the due slots (oldest first) a tick fires, per the missed-tick policy."""
    fresh = [s for s in due if (now - s).total_seconds() <= grace]
    if missed == "skip":
        return fresh[-1:] if fresh and fresh[-1] == due[-1] else []
    return fresh


class CronScheduler:
    """Keeps schedules and turns their slots into jobs; run :meth:`start` in any number of
    processes."""

    def __init__(self, client: QueueClient | PgStore, *, tick_interval: float = 1.0) -> None:
        if tick_interval <= 0:
            raise InvalidArgument("tick_interval must be > 0")
        self.store: PgStore = client if isinstance(client, PgStore) else client.store
        own: Loops | None = getattr(client, "loops", None)
        self.loops = own if isinstance(own, Loops) else Loops()
        self.tick_interval = tick_interval
        self.backoff_first = 0.5  # first retry delay after a failed tick (doubling, capped)
        self._task: asyncio.Task[None] | None = None

    async def schedule(
        self,
        name: str,
        queue: str,
        cron: str,
        *,
        timezone: str = "UTC",
        data: Any = None,
        options: JobOptions | None = None,
        missed: str = "skip",
        grace: float = 60.0,
    ) -> None:
        """Create or replace schedule ``name``; it first fires at the next slot after now."""
        validate_name(name, "schedule")
        validate_name(queue)
        parse_cron(cron)
        load_zone(timezone)
        if missed not in MISSED_POLICIES:
            raise InvalidArgument(
                f"missed must be one of {', '.join(MISSED_POLICIES)}, got {missed!r}"
            )
        if (
            isinstance(grace, bool)
            or not isinstance(grace, int | float)
            or not 0 <= grace <= MAX_DURATION  # NaN fails the comparison too
        ):
            raise InvalidArgument(
                f"grace must be a number of seconds from 0 to {MAX_DURATION}, got {grace!r}"
            )
        wire = (options or JobOptions()).to_wire()
        unknown = set(wire) - set(_SCHEDULE_OPTION_FIELDS)
        if unknown:
            raise InvalidArgument(
                f"options not supported on a schedule: {', '.join(sorted(unknown))}"
            )
        params = {
            "name": name,
            "queue": queue,
            "cron": cron,
            "timezone": timezone,
            "data": None if data is None else to_json(data),
            "options": to_json(wire),
            "missed": missed,
            "grace": float(grace),
        }
        await self.store.upsert_schedule(params)

    async def unschedule(self, name: str) -> bool:
        return await self.store.delete_schedule(name)

    async def schedules(self) -> list[dict[str, Any]]:
        return await self.store.list_schedules()

    async def tick(self) -> list[Fired]:
        """One pass over every schedule; returns the slots this call fired."""
        fired: list[Fired] = []
        for row in await self.schedules():
            try:
                fired.extend(await self._tick_one(row))
            except QueueError as exc:
                log.warning("schedule %s could not tick: %s", row["name"], exc)
        return fired

    async def _tick_one(self, row: dict[str, Any]) -> list[Fired]:
        expr = parse_cron(row["cron"])
        tz = load_zone(row["timezone"])
        now: datetime = row["db_now"]
        last: datetime = row["last_slot"] or now
        due = expr.slots_between(last, now, tz, limit=1000)
        if not due:
            return []
        fire = slots_to_fire(due, now, row["missed"], row["grace"])
        fired: list[Fired] = []
        for slot in fire:
            job_id = await self._fire(row, slot)
            if job_id is not None:
                fired.append(Fired(row["name"], slot, job_id))
        if not fire or fire[-1] != due[-1]:
            await self._advance(row["name"], due[-1])  # pass over slots too old to fire
        return fired

    async def _advance(self, name: str, slot: datetime) -> bool:
        return await self.store.advance_schedule(name, slot)

    async def _fire(self, row: dict[str, Any], slot: datetime) -> uuid.UUID | None:
        name = row["name"]
        wire: dict[str, Any] = row["options"] or {}
        opts = JobOptions(
            id=slot_job_id(self.store.schema, name, slot),
            headers={"schedule": name, "slot": slot.isoformat()},
            **{k: v for k, v in wire.items() if k in _SCHEDULE_OPTION_FIELDS},
        )
        # None: another scheduler fired this slot
        return await self.store.fire_schedule(name, slot, row["queue"], row["data"], opts)

    def start(self) -> None:
        if self._task is None:
            self._task = self.loops.spawn("cron", self._run())

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None

    async def _run(self) -> None:
        await every(
            "cron tick", lambda: self.tick_interval, self.tick, logger=log, first=self.backoff_first
        )
