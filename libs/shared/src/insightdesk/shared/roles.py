"""Least privilege: one PostgreSQL login role per service, and a read-only console role.

The migrate step (run as the database owner) calls :func:`ensure_roles` after the migrations:
each service role may use only its own schema (all rights on its tables and sequences) and the
queue operations (read and write the queue schema's tables, run its functions, use its
sequences — sending, claiming, settling, maintenance; no DDL); the console role may only read
the queue schema. No role may create schemas. A service that is up to date starts without DDL
(``migrations.migrate_schema`` returns early), so it runs fine under its role.

Passwords come from the environment, never from the repository: ``INSIGHTDESK_DB_PASSWORD_<NAME>``
(e.g. ``INSIGHTDESK_DB_PASSWORD_TICKETS``); a role whose password is not set is created without
one (``NOLOGIN`` is not used, so trust/peer setups keep working) and a warning names it.
Adding a service is one line in :data:`SERVICE_ROLES`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ServiceRole:
    """A login role named ``name`` owning the rights on ``schema`` (None: no schema)."""

    name: str
    schema: str | None
    read_only: bool = False


SERVICE_ROLES: tuple[ServiceRole, ...] = (
    ServiceRole("tickets", "tickets"),
    ServiceRole("email", "email"),
    ServiceRole("sla", "sla"),
    ServiceRole("reports", "reports"),
    # the scheduler has no schema of its own: queue operations only (its schedule table is in
    # the queue schema). It connects as the owner in compose/k8s all the same, because queue
    # maintenance VACUUMs the queue's tables and VACUUM needs their ownership.
    ServiceRole("scheduler", None),
    ServiceRole("console", None, read_only=True),
)


CREATE_LOGIN = sql.SQL("CREATE ROLE {} LOGIN")
ALTER_LOGIN = sql.SQL("ALTER ROLE {} LOGIN")
CREATE_WITH_PASSWORD = sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}")
ALTER_WITH_PASSWORD = sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}")


def password_from_env(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    env = os.environ if environ is None else environ
    return env.get(f"INSIGHTDESK_DB_PASSWORD_{name.upper()}") or None


async def ensure_roles(
    conn: psycopg.AsyncConnection[Any],
    *,
    queue_schema: str = "queue",
    roles: Sequence[ServiceRole] = SERVICE_ROLES,
    prefix: str = "insightdesk_",
    passwords: Mapping[str, str | None] | None = None,
) -> list[str]:
    """Create or update the roles (``prefix + name``) and their grants; returns their names.
    Idempotent; ``conn`` must be the owner of the schemas and may not be in a transaction."""
    made = []
    async with conn.transaction():
        for role in roles:
            rolname = prefix + role.name
            ident = sql.Identifier(rolname)
            password = (passwords or {}).get(role.name, password_from_env(role.name))
            cur = await conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (rolname,))
            exists = await cur.fetchone() is not None
            if password is None:
                log.warning(
                    "role %s has no password (set INSIGHTDESK_DB_PASSWORD_%s)",
                    rolname,
                    role.name.upper(),
                )
                await conn.execute((ALTER_LOGIN if exists else CREATE_LOGIN).format(ident))
            else:
                statement = ALTER_WITH_PASSWORD if exists else CREATE_WITH_PASSWORD
                await conn.execute(statement.format(ident, sql.Literal(password)))
            await _grant(conn, ident, sql.Identifier(queue_schema), read_only=role.read_only)
            if role.schema is not None:
                await _grant_own(conn, ident, sql.Identifier(role.schema))
            made.append(rolname)
    return made


async def _grant(
    conn: psycopg.AsyncConnection[Any],
    role: sql.Identifier,
    queue: sql.Identifier,
    *,
    read_only: bool,
) -> None:
    await conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(queue, role))
    if read_only:
        await conn.execute(
            sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(queue, role)
        )
        return
    for statement in (
        "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {} TO {}",
        "GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA {} TO {}",
        "GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA {} TO {}",
    ):
        await conn.execute(sql.SQL(statement).format(queue, role))


async def _grant_own(
    conn: psycopg.AsyncConnection[Any], role: sql.Identifier, schema: sql.Identifier
) -> None:
    for statement in (
        "GRANT USAGE ON SCHEMA {} TO {}",
        "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {} TO {}",
        "GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA {} TO {}",
    ):
        await conn.execute(sql.SQL(statement).format(schema, role))


async def _main() -> None:
    dsn = os.environ.get("DATABASE_URL", "")
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        made = await ensure_roles(conn, queue_schema=os.environ.get("QUEUE_SCHEMA", "queue"))
    log.info("database roles ready: %s", ", ".join(made))


if __name__ == "__main__":  # python -m insightdesk.shared.roles (the migrate step, as owner)
    import asyncio

    logging.basicConfig(level=logging.INFO)
    asyncio.run(_main())
