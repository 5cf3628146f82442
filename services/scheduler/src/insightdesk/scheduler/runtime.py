"""The scheduler at work, over the queue engine's public API (``QueueClient``,
``CronScheduler``, the client's ``Supervisor``): reconcile the settings into the engine's
schedule table, tick, publish fired event schedules, fire a schedule by hand, list them.

Every replica runs all of it: the engine makes each (schedule, slot) fire once however many
tick, the relay claims each fired event with ``SKIP LOCKED`` and publishes it in the same
transaction that completes the job, and maintenance runs under the engine's advisory lock.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from insightdesk.scheduler.reconcile import plan
from insightdesk.scheduler.schedules import RELAY_QUEUE, ScheduleSpec
from insightdesk.shared.clock import Clock
from insightdesk.shared.errors import InsightDeskError, JobNotFound, QueueNotFound
from insightdesk.shared.queue import CronScheduler, QueueClient
from insightdesk.shared.queue.cron import load_zone, parse_cron
from insightdesk.shared.queue.scheduler import slot_job_id

log = logging.getLogger(__name__)

ACTIVE, WAITING, DISABLED, FAILED = "active", "waiting", "disabled", "failed"


class UnknownSchedule(LookupError):
    """No schedule has this name."""


@dataclass(frozen=True, slots=True)
class Status:
    state: str
    detail: str = ""


class Scheduler:
    """One replica's view of the schedules; see the module docstring."""

    def __init__(
        self,
        client: QueueClient,
        schedules: list[ScheduleSpec],
        *,
        clock: Clock,
        relay_batch: int = 20,
    ) -> None:
        self.client = client
        self.cron = CronScheduler(client)
        self.specs = {s.name: s for s in schedules}
        self.clock = clock
        self.relay_batch = relay_batch
        self.status: dict[str, Status] = {
            s.name: Status(DISABLED) if not s.enabled else Status(WAITING, "not reconciled yet")
            for s in schedules
        }

    async def reconcile(self) -> dict[str, Status]:
        """Make the engine's schedule table match the settings; the status of each schedule."""
        existing = {row["name"]: row for row in await self.cron.schedules()}
        todo = plan(list(self.specs.values()), existing)
        for name in todo.retire:
            if await self.cron.unschedule(name):
                log.info("schedule %s retired", name)
        for name in todo.unchanged:
            self._set(name, Status(ACTIVE))
        for spec in todo.write:
            try:
                await self.cron.schedule(
                    spec.name,
                    spec.engine_queue,
                    spec.cron,
                    timezone=spec.timezone,
                    data=spec.engine_data,
                    options=spec.job_options(),
                    missed=spec.missed,
                    grace=spec.grace,
                )
            except QueueNotFound:
                self._set(
                    spec.name,
                    Status(WAITING, f"queue {spec.engine_queue!r} does not exist yet"),
                )
                continue
            except InsightDeskError as exc:  # one bad schedule must not hold up the others
                self._set(spec.name, Status(FAILED, str(exc)))
                log.error("schedule %s cannot be written: %s", spec.name, exc)  # noqa: TRY400
                continue
            self._set(spec.name, Status(ACTIVE))
            log.info("schedule %s %s (%s)", spec.name, "written", spec.cron)
        return dict(self.status)

    def _set(self, name: str, status: Status) -> None:
        before = self.status.get(name)
        self.status[name] = status
        if status != before and status.state == WAITING:
            log.warning("schedule %s waits: %s", name, status.detail)
        elif status != before and before is not None and before.state == WAITING:
            log.info("schedule %s is active", name)

    async def tick(self) -> list[str]:
        """Fire the due slots (any replica may; each slot fires once); the schedules this call
        fired a slot of (one entry per slot)."""
        return [fired.schedule for fired in await self.cron.tick()]

    async def relay(self) -> int:
        """Publish the events of fired event schedules, each in the transaction completing its
        job (a crash in between publishes nothing and the job is retried)."""
        jobs = await self.client.claim(RELAY_QUEUE, self.relay_batch)
        for job in jobs:
            data: dict[str, Any] = job.data or {}
            occurred = job.headers.get("slot") or self.clock.now().isoformat()
            body = {
                **(data.get("payload") or {}),
                "schedule": data.get("schedule"),
                "occurred_at": occurred,
            }
            async with self.client.pool.connection() as conn, conn.transaction():
                await self.client.publish(str(data["event"]), body, conn=conn)
                if not await self.client.complete(
                    job.id, job.lease, {"published": data["event"]}, conn=conn
                ):
                    raise RuntimeError(f"lost the lease of relay job {job.id}")  # rolls back
            log.info("published %s for schedule %s", data["event"], data.get("schedule"))
        return len(jobs)

    async def run_now(self, name: str) -> uuid.UUID | None:
        """Fire schedule ``name`` now, outside its slot series (raises UnknownSchedule,
        QueueNotFound)."""
        spec = self.specs.get(name)
        if spec is None:
            raise UnknownSchedule(name)
        options = spec.job_options(
            headers={"schedule": name, "manual": True, "slot": self.clock.now().isoformat()}
        )
        job_id = await self.client.send(spec.engine_queue, spec.engine_data, options)
        log.info("schedule %s fired by hand: job %s", name, job_id)
        return job_id

    async def listing(self) -> list[dict[str, Any]]:
        """Every configured schedule with its next and last slot and the last slot's job."""
        rows = {row["name"]: row for row in await self.cron.schedules()}
        now = self.clock.now()
        out = []
        for name, spec in sorted(self.specs.items()):
            row = rows.get(name)
            status = self.status.get(name, Status(WAITING))
            last_slot = _real_slot(spec, row["last_slot"]) if row else None
            job_id, job_state = None, None
            if last_slot is not None:
                job_id = slot_job_id(self.client.schema, name, last_slot)
                try:
                    job_state = (await self.client.get_job(job_id)).state.value
                except JobNotFound:
                    job_id = None  # passed over (too late to fire) or already purged
            out.append(
                {
                    "name": name,
                    "cron": spec.cron,
                    "timezone": spec.timezone,
                    "target": spec.target,
                    "enabled": spec.enabled,
                    "state": status.state,
                    "detail": status.detail,
                    "next_slot": _next_slot(spec, now, last_slot) if spec.enabled else None,
                    "last_slot": last_slot,
                    "last_job_id": job_id,
                    "last_job_state": job_state,
                    "description": spec.description,
                }
            )
        return out


def _next_slot(spec: ScheduleSpec, now: datetime, last: datetime | None) -> datetime:
    after = max(now, last) if last is not None else now
    return parse_cron(spec.cron).next_after(after, load_zone(spec.timezone))


def _real_slot(spec: ScheduleSpec, last: datetime | None) -> datetime | None:
    """``last_slot`` if it is a slot of the schedule (a new row holds its creation time)."""
    if last is None:
        return None
    probe = last - timedelta(seconds=1)
    slot = parse_cron(spec.cron).next_after(probe, load_zone(spec.timezone))
    return last if slot == last else None
