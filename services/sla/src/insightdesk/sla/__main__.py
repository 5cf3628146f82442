"""``python -m insightdesk.sla [run|migrate]`` (see :mod:`insightdesk.shared.service`).

* ``run`` (the default): the SLA worker with ``/healthz``, ``/readyz``, ``/metrics`` and the
  AsyncAPI docs on ``SLA_HTTP_HOST``:``SLA_HTTP_PORT`` (127.0.0.1:8004). SIGTERM/SIGINT:
  readiness goes down, claiming stops, in-flight checks finish (up to ``SLA_SHUTDOWN_TIMEOUT``)
  and unfinished jobs go back to the queue.
* ``migrate``: the queue schema, the ``sla`` schema, the service's queues and their event
  subscriptions (so events published before its first start are kept), exit 0.
"""

from __future__ import annotations

from insightdesk.shared.queue import QueueClient
from insightdesk.shared.service import Process, Service, migrate_service
from insightdesk.sla.app import queue_definitions, sla_process
from insightdesk.sla.settings import SlaSettings
from insightdesk.sla.store import SCHEMA


async def declare_queues(client: QueueClient) -> None:
    for name, options, events in queue_definitions():
        await client.create_queue(name, options)
        for event in events:
            await client.subscribe(event, name)


async def migrate(settings: SlaSettings) -> None:
    await migrate_service(
        settings.require_database_url(),
        queue_schema=settings.queue_schema,
        schema=SCHEMA,
        package="insightdesk.sla",
        declare=declare_queues,
    )


SERVICE = Service(
    name="sla",
    settings=SlaSettings,
    migrate=migrate,
    processes=[Process("worker", sla_process, "SLA clocks, deadlines, warnings, breaches")],
    description="InsightDesk SLA service",
)

main = SERVICE.main

if __name__ == "__main__":
    raise SystemExit(main())
