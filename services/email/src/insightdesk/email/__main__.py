"""``python -m insightdesk.email [run|migrate]`` (see :mod:`insightdesk.shared.service`).

``run`` (the default) serves the service on ``EMAIL_HTTP_HOST``:``EMAIL_HTTP_PORT``
(127.0.0.1:8001). SIGTERM or Ctrl-C stops it gracefully: the broker stops claiming, in-flight
mails finish within ``EMAIL_SHUTDOWN_TIMEOUT`` seconds and unfinished jobs go back to the queue.
``migrate`` prepares the database (see :mod:`insightdesk.email.database`) and exits.
"""

from __future__ import annotations

from insightdesk.email.app import email_process
from insightdesk.email.database import migrate_settings
from insightdesk.email.settings import EmailSettings
from insightdesk.shared.service import Process, Service

SERVICE = Service(
    name="email",
    settings=EmailSettings,
    migrate=migrate_settings,
    processes=[Process("email", email_process, "consumes the email queue")],
    description="InsightDesk email service",
)

main = SERVICE.main

if __name__ == "__main__":
    raise SystemExit(main())
