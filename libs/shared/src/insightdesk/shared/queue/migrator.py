"""Installs and upgrades the queue schema (through the shared migration mechanism)."""

from __future__ import annotations

from functools import cache
from typing import Any

import psycopg
from psycopg import sql

from insightdesk.shared.migrations import Migration, load_migrations, migrate_schema
from insightdesk.shared.queue.statements import notify_channel, validate_schema


@cache
def migrations(schema: str) -> tuple[Migration, ...]:
    """The queue migrations rendered for ``schema`` (also fills in the NOTIFY channel)."""
    return load_migrations(
        __package__ or "insightdesk.shared.queue",
        "migrations",
        schema,
        {"channel": sql.Literal(notify_channel(schema))},
    )


LATEST_VERSION = migrations("queue")[-1].version


async def migrate(conn: psycopg.AsyncConnection[Any], schema: str = "queue") -> int:
    """Bring the queue ``schema`` to the latest version; returns the version it ended at."""
    return await migrate_schema(conn, validate_schema(schema), migrations(schema))
