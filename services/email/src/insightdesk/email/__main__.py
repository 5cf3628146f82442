"""``python -m insightdesk.email [run|migrate]``.

``run`` (the default) serves the service with uvicorn on ``EMAIL_HTTP_HOST``:``EMAIL_HTTP_PORT``
(127.0.0.1:8001). SIGTERM or Ctrl-C stops it gracefully: the broker stops claiming, in-flight
mails finish within ``EMAIL_SHUTDOWN_TIMEOUT`` seconds and unfinished jobs go back to the queue.
``migrate`` prepares the database (see :mod:`insightdesk.email.database`) and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import signal
import sys
from collections.abc import Sequence
from types import FrameType

import uvicorn
from pydantic import ValidationError

from insightdesk.email.app import create_app
from insightdesk.email.database import migrate
from insightdesk.email.settings import EmailSettings
from insightdesk.shared.errors import InsightDeskError

log = logging.getLogger("insightdesk.email")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m insightdesk.email", description="InsightDesk email service"
    )
    parser.add_argument("command", nargs="?", choices=("run", "migrate"), default="run")
    args = parser.parse_args(argv)
    try:
        settings = EmailSettings()
    except (InsightDeskError, ValidationError) as exc:
        print(f"email: configuration error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        if args.command == "migrate":
            asyncio.run(
                migrate(settings.require_database_url(), queue_schema=settings.queue_schema)
            )
            log.info("email: database migrated, queues declared")
            return 0
        return serve(settings)
    except InsightDeskError:
        log.exception("email: stopped by an error")
        return 1


def _stopped(signum: int, frame: FrameType | None) -> None:
    """After a graceful shutdown uvicorn re-raises the signal that caused it to the handler it
    found; this one makes that a clean exit (status 0) instead of death by SIGTERM."""


def serve(settings: EmailSettings) -> int:
    app = create_app(settings)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _stopped)
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        lifespan="on",
        log_config=None,  # keep the logging configured above
        timeout_graceful_shutdown=max(1, math.ceil(settings.shutdown_timeout)),
    )
    server = uvicorn.Server(config)
    server.run()  # handles SIGINT/SIGTERM: graceful shutdown, then the lifespan ends
    return 0 if server.started else 3


if __name__ == "__main__":
    raise SystemExit(main())
