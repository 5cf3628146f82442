"""One schema-migration mechanism for every schema: the queue engine's and each service's.

A schema's migrations are ``NNNN_name.sql`` files in a package folder. ``{schema}`` in them is
replaced by the quoted schema identifier (through :mod:`psycopg.sql`). They are applied in order
in one transaction under a transaction-level advisory lock keyed on the schema, and recorded in
``<schema>.version``, so any number of processes may start at once: the first applies what is
missing, the others wait on the lock and find nothing left to do. A crash rolls back everything.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import psycopg
from psycopg import sql

from insightdesk.shared.errors import MigrationError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    text: str


def load_migrations(
    package: str, folder: str, schema: str, extra: Mapping[str, sql.Composable] | None = None
) -> tuple[Migration, ...]:
    """The ``NNNN_*.sql`` files of ``package/folder``, rendered for ``schema``, in order."""
    found = []
    for entry in resources.files(package).joinpath(folder).iterdir():
        if not entry.name.endswith(".sql"):
            continue
        head = entry.name.split("_", 1)[0]
        if not head.isdigit():
            raise MigrationError(
                f"migration file {entry.name!r} must start with its version number"
            )
        composed = sql.SQL(entry.read_text(encoding="utf-8")).format(  # trusted package files
            schema=sql.Identifier(schema), **(extra or {})
        )
        found.append(Migration(int(head), entry.name, composed.as_string(None)))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise MigrationError(f"migrations of {package}/{folder} are not numbered 1..n: {versions}")
    return tuple(found)


async def migrate_schema(
    conn: psycopg.AsyncConnection[Any], schema: str, migrations: Sequence[Migration]
) -> int:
    """Bring ``schema`` to the last of ``migrations``; returns the version it ended at.

    ``conn`` must not be inside a transaction; the migration commits on its own.
    """
    ident = sql.Identifier(schema)
    latest = migrations[-1].version if migrations else 0
    try:
        # Up to date: return without DDL, so a service's own login role (no CREATE on the
        # database, see ``insightdesk.shared.roles``) can start; the migrate step migrates.
        async with conn.transaction():
            cur = await conn.execute(
                "SELECT to_regclass(format('%%I.version', %s::text)) IS NOT NULL", (schema,)
            )
            row = await cur.fetchone()
            if row and row[0]:
                cur = await conn.execute(
                    sql.SQL("SELECT COALESCE(max(version), 0) FROM {}.version").format(ident)
                )
                row = await cur.fetchone()
                if row and int(row[0]) == latest:
                    return latest
        async with conn.transaction():
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                (f"insightdesk.migrate:{schema}",),
            )
            await conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(ident))
            await conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {}.version "
                    "(version integer NOT NULL, applied_on timestamptz NOT NULL DEFAULT now())"
                ).format(ident)
            )
            cur = await conn.execute(
                sql.SQL("SELECT COALESCE(max(version), 0) FROM {}.version").format(ident)
            )
            row = await cur.fetchone()
            current = int(row[0]) if row else 0
            if current > latest:
                raise MigrationError(
                    f"schema {schema!r} is at version {current}, newer than this code "
                    f"({latest}); upgrade the code"
                )
            for migration in migrations:
                if migration.version <= current:
                    continue
                log.info("applying migration %s to schema %s", migration.name, schema)
                await conn.execute(migration.text.encode())
                await conn.execute(
                    sql.SQL("INSERT INTO {}.version (version) VALUES (%s)").format(ident),
                    (migration.version,),
                )
                current = migration.version
            return current
    except psycopg.Error as exc:
        raise MigrationError(f"could not migrate schema {schema!r}: {exc}") from exc
