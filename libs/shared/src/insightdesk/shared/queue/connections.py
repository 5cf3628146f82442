"""Where engine statements run: the engine's own pool, or the caller's open transaction.

A send may join a transaction the caller already holds, so the job commits or rolls back with the
business write (the transactional outbox). Two kinds of caller connection are accepted: a psycopg
``AsyncConnection`` and a SQLAlchemy/SQLModel ``AsyncSession`` or ``AsyncConnection`` running on
the ``postgresql+psycopg`` driver. SQLAlchemy is detected by duck typing so it stays optional.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any, Protocol

import psycopg
from psycopg_pool import AsyncConnectionPool

from insightdesk.shared.errors import DatabaseError, InvalidArgument


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


@contextlib.asynccontextmanager
async def borrow(
    pool: AsyncConnectionPool[Any], conn: Executor | None
) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """The caller's connection if given, else one from the pool (autocommit)."""
    if conn is not None:
        yield await driver_connection(conn)
        return
    try:
        async with pool.connection() as pooled:
            yield pooled
    except psycopg.OperationalError as exc:
        raise DatabaseError(f"database unavailable: {exc}") from exc
