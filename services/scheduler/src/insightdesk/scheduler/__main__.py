"""``python -m insightdesk.scheduler [run|migrate]`` (see :mod:`insightdesk.shared.service`).

``run`` (the default): fire the schedules and run queue maintenance, HTTP on
``SCHEDULER_HTTP_HOST``:``SCHEDULER_HTTP_PORT`` (127.0.0.1:8002): ``/healthz``, ``/readyz``,
``/metrics``, ``GET /schedules``, ``POST /schedules/{name}/run`` (``SCHEDULER_OPERATOR_TOKEN``).
Run as many replicas as you like: each (schedule, slot) fires once. ``migrate``: the queue
schema and the scheduler's relay queue.
"""

from __future__ import annotations

from insightdesk.scheduler.app import scheduler_process
from insightdesk.scheduler.schedules import RELAY_QUEUE
from insightdesk.scheduler.settings import SchedulerSettings
from insightdesk.shared.queue import QueueClient
from insightdesk.shared.service import Process, Service, migrate_service


async def migrate(settings: SchedulerSettings) -> None:
    async def declare(client: QueueClient) -> None:
        await client.ensure_queue(RELAY_QUEUE)

    await migrate_service(
        settings.require_database_url(), queue_schema=settings.queue_schema, declare=declare
    )


SERVICE = Service(
    name="scheduler",
    settings=SchedulerSettings,
    migrate=migrate,
    processes=[Process("scheduler", scheduler_process, "cron jobs and queue maintenance")],
    description="InsightDesk scheduler service",
)

main = SERVICE.main

if __name__ == "__main__":
    raise SystemExit(main())
