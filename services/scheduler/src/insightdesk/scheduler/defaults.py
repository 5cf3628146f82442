"""The schedules the help desk runs (the seed's "Scheduled Jobs"), in UTC.

Settings change, add or disable schedules by name (``SCHEDULER_SCHEDULES`` or the TOML file in
``SCHEDULER_SCHEDULES_FILE``); see :mod:`insightdesk.scheduler.schedules`. The scheduler knows
nothing of organizations: the hourly digest and weekly ticks go to the reports service, which
picks the organizations whose local hour it is.
"""

from __future__ import annotations

from insightdesk.scheduler.schedules import ScheduleSpec

DEFAULT_SCHEDULES: tuple[ScheduleSpec, ...] = (
    ScheduleSpec(
        name="auto-close",
        cron="0 * * * *",
        queue="ticket-actions",
        data={"action": "auto-close"},
        options={"retry_limit": 3, "expire_in": 900},
        description="close tickets resolved longer than their organization allows",
    ),
    ScheduleSpec(
        name="daily-digest",
        cron="0 * * * *",
        queue="reports",
        data={"kind": "daily-digest"},
        description="hourly tick: digests for organizations at their local digest hour",
    ),
    ScheduleSpec(
        name="weekly-report",
        cron="0 * * * 1",
        queue="reports",
        data={"kind": "weekly-report"},
        description="hourly tick on Mondays: weekly reports at each organization's local hour",
    ),
    ScheduleSpec(
        name="cleanup",
        cron="0 3 * * *",
        event="maintenance.cleanup_requested",
        description="every service that subscribes purges or archives its old data",
    ),
    ScheduleSpec(
        name="sla-scan",
        cron="* * * * *",
        queue="sla-scan",
        data={"kind": "sla-scan"},
        grace=50,
        description="safety net for SLA deadlines whose exact-time job was missed",
    ),
)
