"""What the scheduler service sends: the payload of every scheduled job, and the maintenance
event it publishes (``cleanup`` at 03:00: every service that subscribes cleans its own data)."""

from __future__ import annotations

from typing import ClassVar

from insightdesk.shared.contracts.base import Contract, Event


class ScheduledTick(Contract):
    """The body of a job the scheduler fires into a queue: which schedule fired it.

    The slot (an ISO instant) travels in the job's ``slot`` header, ``manual: true`` when an
    operator fired it outside the slot series (``POST /schedules/{name}/run``). Schedules may
    carry extra payload fields; consumers ignore the ones they do not know."""

    schedule: str


class MaintenanceCleanupRequested(Event):
    """Time to purge or archive old data; each subscriber decides what "old" means for it."""

    name: ClassVar[str] = "maintenance.cleanup_requested"
    schedule: str = "cleanup"
