"""``python -m insightdesk.tickets [serve|migrate]``.

* ``serve`` (default): the HTTP API under uvicorn on ``TICKETS_HTTP_HOST``:``TICKETS_HTTP_PORT``
  (127.0.0.1:8000). SIGTERM/SIGINT: stop accepting, let in-flight requests finish (up to
  ``TICKETS_SHUTDOWN_TIMEOUT``), then stop the broker and close the pools.
* ``migrate``: apply the queue schema's and the ``tickets`` schema's migrations, create the
  ``email`` queue, exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from types import FrameType

import uvicorn
from pydantic import ValidationError

from insightdesk.shared.errors import InsightDeskError
from insightdesk.tickets.app import create_app
from insightdesk.tickets.database import migrate_database
from insightdesk.tickets.settings import TicketsSettings

log = logging.getLogger("insightdesk.tickets")


def serve(settings: TicketsSettings) -> int:
    config = uvicorn.Config(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        lifespan="on",
        timeout_graceful_shutdown=max(1, int(settings.shutdown_timeout)),
        log_level=settings.log_level.lower(),
        proxy_headers=False,
    )
    server = uvicorn.Server(config)
    # uvicorn handles SIGTERM/SIGINT itself (graceful shutdown), restores the handlers found
    # here and then re-raises the signal; by then the shutdown is complete, so exit 0 rather
    # than die of the signal (status 143) or print a KeyboardInterrupt.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _exit_after_shutdown)
    server.run()
    return 0 if server.started else 1


def _exit_after_shutdown(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m insightdesk.tickets",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", nargs="?", choices=("serve", "migrate"), default="serve")
    args = parser.parse_args(argv)
    try:
        settings = TicketsSettings()
    except ValidationError as exc:
        print(f"invalid settings: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        if args.command == "migrate":
            dsn = settings.require_database_url()
            asyncio.run(migrate_database(dsn, queue_schema=settings.queue_schema))
            log.info("tickets: database migrated")
            return 0
        return serve(settings)
    except InsightDeskError as exc:
        log.error("tickets: %s", exc)  # noqa: TRY400  # the message says it all; no traceback
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
