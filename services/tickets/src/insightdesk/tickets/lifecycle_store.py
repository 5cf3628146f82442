"""The lifecycle jobs' store: the ``tickets`` schema on the worker's own psycopg pool, with
events and mails written through the broker into the same transaction (the outbox).

Bulk all the way: one statement closes a batch, and its events and mails are inserted with
one statement per destination queue (``publish_batch``) — not a round trip per ticket. An event
goes to every queue subscribed to it (read once per batch), exactly like a publish.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from insightdesk.shared.contracts import (
    Role,
    TicketClosed,
    TicketPriority,
    TicketSnapshot,
    TicketStatus,
    UserRef,
)
from insightdesk.shared.errors import DatabaseError
from insightdesk.shared.queue.broker import PgBroker
from insightdesk.tickets.lifecycle import Closed
from insightdesk.tickets.models import SCHEMA
from insightdesk.tickets.notifications import Notification

_EPOCH = datetime(1, 1, 1, tzinfo=UTC)
_NIL = uuid.UUID(int=0)


@cache
def statement(name: str, schema: str = SCHEMA) -> str:
    text = resources.files(__package__).joinpath("sql", f"{name}.sql").read_text("utf-8")
    return sql.SQL(text).format(schema=sql.Identifier(schema)).as_string(None)  # package file


class PgLifecycleStore:
    """:class:`insightdesk.tickets.lifecycle.LifecycleStore` on a psycopg pool and a broker."""

    def __init__(self, pool: AsyncConnectionPool[Any], broker: PgBroker) -> None:
        self.pool = pool
        self.broker = broker

    @asynccontextmanager
    async def batch(self) -> AsyncIterator[PgLifecycleBatch]:
        try:
            async with self.pool.connection() as conn, conn.transaction():
                yield PgLifecycleBatch(conn, self.broker)
        except psycopg.Error as exc:
            raise DatabaseError(f"tickets lifecycle batch failed: {exc}") from exc


class PgLifecycleBatch:
    def __init__(self, conn: psycopg.AsyncConnection[Any], broker: PgBroker) -> None:
        self.conn = conn
        self.broker = broker

    async def close_due(
        self, now: datetime, after: tuple[datetime, uuid.UUID] | None, limit: int
    ) -> list[Closed]:
        after_at, after_id = after or (_EPOCH, _NIL)
        cur = self.conn.cursor(row_factory=dict_row)
        await cur.execute(
            statement("close_due"),
            {"now": now, "after_at": after_at, "after_id": after_id, "limit": limit},
        )
        return [_closed(row) for row in await cur.fetchall()]

    async def archive_closed_before(self, cutoff: datetime, now: datetime, limit: int) -> int:
        cur = await self.conn.execute(
            statement("archive_closed"), {"cutoff": cutoff, "now": now, "limit": limit}
        )
        return int(cur.rowcount)

    async def publish(self, events: Sequence[TicketClosed]) -> None:
        if not events:
            return
        name = events[0].name
        queues = [q for e, q in await self.broker.client.subscriptions() if e == name]
        for queue in queues:
            await self.broker.publish_batch(*events, queue=queue, conn=self.conn)

    async def send(self, notifications: Sequence[Notification]) -> None:
        by_queue: dict[str, list[Any]] = {}
        for notification in notifications:
            command = notification.command
            by_queue.setdefault(command.queue, []).append(command)
        for queue, commands in by_queue.items():
            await self.broker.publish_batch(*commands, queue=queue, conn=self.conn)


def _closed(row: dict[str, Any]) -> Closed:
    customer = UserRef(
        id=row["customer_id"],
        email=row["customer_email"],
        name=row["customer_name"],
        role=Role(row["customer_role"]),
    )
    assignee = None
    if row["assignee_id"] is not None:
        assignee = UserRef(
            id=row["assignee_id"],
            email=row["assignee_email"],
            name=row["assignee_name"],
            role=Role(row["assignee_role"]),
        )
    snapshot = TicketSnapshot(
        id=row["id"],
        organization_id=row["organization_id"],
        subject=row["subject"],
        status=TicketStatus.CLOSED,
        priority=TicketPriority(row["priority"]),
        customer=customer,
        assignee=assignee,
        created_at=row["created_at"],
        first_response_at=row["first_response_at"],
        resolved_at=row["resolved_at"],
        closed_at=row["closed_at"],
    )
    return Closed(snapshot, row["locale"])
