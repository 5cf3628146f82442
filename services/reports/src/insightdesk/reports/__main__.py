"""``python -m insightdesk.reports [run|migrate]`` (see :mod:`insightdesk.shared.service`).

``run`` (the default) consumes the reports queues and serves ``/downloads/{token}`` on
``REPORTS_HTTP_HOST``:``REPORTS_HTTP_PORT`` (127.0.0.1:8005); SIGTERM or Ctrl-C stops it
gracefully (in-flight jobs finish within ``REPORTS_SHUTDOWN_TIMEOUT`` seconds, the rest go back
to their queues). ``migrate`` applies the queue and ``reports`` schemas and declares the queues.
"""

from __future__ import annotations

from insightdesk.reports.app import declare_queues, reports_process
from insightdesk.reports.settings import ReportsSettings
from insightdesk.shared.service import Process, Service, migrate_service


async def migrate(settings: ReportsSettings) -> None:
    await migrate_service(
        settings.require_database_url(),
        queue_schema=settings.queue_schema,
        schema="reports",
        package="insightdesk.reports",
        declare=declare_queues,
    )


SERVICE = Service(
    name="reports",
    settings=ReportsSettings,
    migrate=migrate,
    processes=[Process("reports", reports_process, "digests, weekly reports and exports")],
    description="InsightDesk reports service",
)

main = SERVICE.main

if __name__ == "__main__":
    raise SystemExit(main())
