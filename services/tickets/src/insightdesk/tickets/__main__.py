"""``python -m insightdesk.tickets [run|migrate|api|worker]`` (see
:mod:`insightdesk.shared.service`).

* ``api`` (= ``run``, the default): the HTTP API under uvicorn on ``TICKETS_HTTP_HOST``:
  ``TICKETS_HTTP_PORT`` (127.0.0.1:8000). SIGTERM/SIGINT: stop accepting, let in-flight requests
  finish (up to ``TICKETS_SHUTDOWN_TIMEOUT``), then stop the broker and close the pools.
* ``worker``: the queue consumers (auto-close on ``ticket-actions``, cleanup on
  ``maintenance.cleanup_requested``), health on ``TICKETS_WORKER_HTTP_PORT`` (8003); scale it
  apart from the API.
* ``migrate``: apply the queue schema's and the ``tickets`` schema's migrations, create the
  queues the service sends to, exit 0.
"""

from __future__ import annotations

from insightdesk.shared.service import Process, Service
from insightdesk.tickets.app import api_process
from insightdesk.tickets.database import migrate
from insightdesk.tickets.settings import TicketsSettings
from insightdesk.tickets.worker import worker_process

SERVICE = Service(
    name="tickets",
    settings=TicketsSettings,
    migrate=migrate,
    processes=[
        Process("api", api_process, "the ticket HTTP API"),
        Process(
            "worker",
            worker_process,
            "auto-close and cleanup jobs",
            port=lambda settings: settings.worker_http_port,
        ),
    ],
    description="InsightDesk tickets service",
)

main = SERVICE.main

if __name__ == "__main__":
    raise SystemExit(main())
