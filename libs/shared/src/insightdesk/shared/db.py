"""Finding a PostgreSQL to talk to: the configured one, or an embedded server for development.

``DATABASE_URL`` (a plain libpq URI) wins. Without it the local runner and the test suite fall
back to an embedded PostgreSQL from the ``pgserver`` package, kept in a data folder, so the
stack runs on a machine with no PostgreSQL installed. Nothing here runs at import time.
"""

from __future__ import annotations

import logging
import os
import socket
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from insightdesk.shared.errors import ConfigurationError

log = logging.getLogger(__name__)


def dsn_from_env(environ: dict[str, str] | None = None) -> str | None:
    """``DATABASE_URL``, else a DSN built from libpq's ``PG*`` variables when ``PGHOST`` is set."""
    env = os.environ if environ is None else environ
    url = env.get("DATABASE_URL", "").strip()
    if url:
        if url.startswith("postgresql+"):
            raise ConfigurationError(
                "DATABASE_URL must be a plain libpq URI (postgresql://...), not a SQLAlchemy URL"
            )
        return url
    if env.get("PGHOST"):
        return ""  # libpq reads PGHOST/PGPORT/PGUSER/PGDATABASE/PGPASSWORD itself
    return None


def tcp_reachable(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@dataclass
class EmbeddedPostgres:
    """A pgserver-managed PostgreSQL in ``data_dir``; ``stop()`` shuts it down."""

    data_dir: Path
    dsn: str
    _server: Any

    def stop(self) -> None:
        self._server.cleanup()


def start_embedded(data_dir: Path) -> EmbeddedPostgres:
    """Start (or reuse) an embedded PostgreSQL whose data lives in ``data_dir``."""
    try:
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            import pgserver  # noqa: PLC0415  # optional heavy dependency, only when asked for
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ConfigurationError(
            "no DATABASE_URL and the embedded PostgreSQL (pgserver) is not installed"
        ) from exc
    data_dir.mkdir(parents=True, exist_ok=True)
    get_server: Any = pgserver.get_server  # type: ignore[attr-defined]
    server = get_server(str(data_dir), cleanup_mode="stop")
    dsn = server.get_uri()
    log.info("embedded PostgreSQL running in %s", data_dir)
    return EmbeddedPostgres(data_dir=data_dir, dsn=dsn, _server=server)
