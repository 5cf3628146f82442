"""``python -m insightdesk.tickets [run|migrate|api]`` (see :mod:`insightdesk.shared.service`).

* ``api`` (= ``run``, the default): the HTTP API under uvicorn on ``TICKETS_HTTP_HOST``:
  ``TICKETS_HTTP_PORT`` (127.0.0.1:8000). SIGTERM/SIGINT: stop accepting, let in-flight requests
  finish (up to ``TICKETS_SHUTDOWN_TIMEOUT``), then stop the broker and close the pools.
* ``migrate``: apply the queue schema's and the ``tickets`` schema's migrations, create the
  queues the service sends to, exit 0.
"""

from __future__ import annotations

from insightdesk.shared.service import Process, Service
from insightdesk.tickets.app import api_process
from insightdesk.tickets.database import migrate
from insightdesk.tickets.settings import TicketsSettings

SERVICE = Service(
    name="tickets",
    settings=TicketsSettings,
    migrate=migrate,
    processes=[Process("api", api_process, "the ticket HTTP API")],
    description="InsightDesk tickets service",
)

main = SERVICE.main

if __name__ == "__main__":
    raise SystemExit(main())
