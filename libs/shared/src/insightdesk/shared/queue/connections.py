"""Where engine statements run: the engine's own pool, or the caller's open transaction.

A send may join a transaction the caller already holds, so the job commits or rolls back with the
business write (the transactional outbox). Two kinds of caller connection are accepted: a psycopg
``AsyncConnection`` and a SQLAlchemy/SQLModel ``AsyncSession`` or ``AsyncConnection`` running on
the ``postgresql+psycopg`` driver. SQLAlchemy is detected by duck typing so it stays optional.
"""

from __future__ import annotations

from typing import Any, Protocol

import psycopg

from insightdesk.shared.errors import InvalidArgument


class _SqlAlchemyAsync(Protocol):
    async def connection(self) -> Any: ...


Executor = psycopg.AsyncConnection[Any] | Any
"""A psycopg ``AsyncConnection`` or a SQLAlchemy ``AsyncSession``/``AsyncConnection``."""


async def driver_connection(conn: Executor) -> psycopg.AsyncConnection[Any]:
    """The psycopg connection underneath ``conn``, in whatever transaction it has open."""
    if isinstance(conn, psycopg.AsyncConnection):
        return conn
    raw: Any = None
    if hasattr(conn, "get_raw_connection"):  # sqlalchemy.ext.asyncio.AsyncConnection
        raw = await conn.get_raw_connection()
    elif hasattr(conn, "connection") and hasattr(conn, "sync_session"):  # AsyncSession
        sa_conn = await conn.connection()
        raw = await sa_conn.get_raw_connection()
    driver = getattr(raw, "driver_connection", None)
    if isinstance(driver, psycopg.AsyncConnection):
        return driver
    raise InvalidArgument(
        "conn must be a psycopg AsyncConnection or a SQLAlchemy AsyncSession/AsyncConnection "
        f"on the postgresql+psycopg driver, got {type(conn).__name__}"
    )
