"""The delivery log in PostgreSQL (table ``email.delivery_log``), and event publishing in the
same transaction as each outcome it records.

SQL lives in ``sql/*.sql`` (one statement per file), rendered once for the schema through
:mod:`psycopg.sql`; psycopg errors are wrapped in the project's :class:`DatabaseError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from insightdesk.email.delivery import Claim, ClaimState, DeliveryRequest
from insightdesk.email.messages import DeliveryReceipt
from insightdesk.shared.contracts import EmailDelivered, EmailFailed, Event
from insightdesk.shared.errors import DatabaseError

log = logging.getLogger(__name__)

SCHEMA = "email"
RECORD_ATTEMPTS = 3
"""Tries to record a delivery: a provider accepted the mail, losing the record means a resend."""

PublishEvent = Callable[[Event, psycopg.AsyncConnection[Any]], Awaitable[object]]
"""Publishes an event inside the given connection's open transaction."""


@cache
def statement(name: str, schema: str = SCHEMA) -> str:
    """``sql/<name>.sql`` with ``{schema}`` replaced by the quoted identifier."""
    text = resources.files(__package__).joinpath("sql", f"{name}.sql").read_text("utf-8")
    return sql.SQL(text).format(schema=sql.Identifier(schema)).as_string(None)  # package file


class PgDeliveryLog:
    """:class:`~insightdesk.email.delivery.DeliveryLog` on a psycopg pool (autocommit)."""

    def __init__(
        self,
        pool: Callable[[], AsyncConnectionPool[Any]],
        publish_event: PublishEvent,
        *,
        schema: str = SCHEMA,
        retry_pause: float = 0.5,
    ) -> None:
        self._pool = pool
        self._publish = publish_event
        self.schema = schema
        self.retry_pause = retry_pause

    @contextlib.asynccontextmanager
    async def _transaction(self, action: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        try:
            async with self._pool().connection() as conn, conn.transaction():
                yield conn
        except psycopg.Error as exc:
            raise DatabaseError(f"delivery log: {action} failed: {exc}") from exc

    async def claim(self, request: DeliveryRequest) -> Claim:
        token = uuid.uuid4()
        params = {
            "idempotency_key": request.idempotency_key,
            "recipient": request.recipient,
            "template": request.template,
            "locale": request.locale,
            "provider": request.provider,
            "message_id": request.message_id,
            "trace_id": request.trace_id,
            "job_id": request.job_id,
            "attempt": request.attempt,
            "claim": token,
            "lease_seconds": request.lease_seconds,
        }
        async with self._transaction("claim") as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(statement("claim", self.schema), params)
            row = await cur.fetchone()
        if row is None:  # a concurrent first claim is not visible yet
            return Claim(ClaimState.BUSY, retry_in=1.0)
        if row["claimed"]:
            return Claim(ClaimState.CLAIMED, token=token)
        if row["status"] == "delivered":
            return Claim(ClaimState.DELIVERED, provider_message_id=row["provider_message_id"])
        return Claim(ClaimState.BUSY, retry_in=float(row["retry_in"] or 1.0))

    async def record_delivered(
        self,
        request: DeliveryRequest,
        claim: Claim,
        receipt: DeliveryReceipt,
        event: EmailDelivered,
    ) -> bool:
        params = {
            "idempotency_key": request.idempotency_key,
            "provider": receipt.provider,
            "provider_message_id": receipt.provider_message_id,
        }
        for attempt in range(1, RECORD_ATTEMPTS + 1):
            try:
                return await self._update_and_publish("record_delivered", params, event)
            except DatabaseError:
                if attempt == RECORD_ATTEMPTS:
                    raise
                log.warning("recording the delivery of %s failed; trying again", request.message_id)
                await asyncio.sleep(self.retry_pause * attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    async def record_failed(
        self, request: DeliveryRequest, claim: Claim, error: str, event: EmailFailed
    ) -> bool:
        params = {"idempotency_key": request.idempotency_key, "claim": claim.token, "error": error}
        return await self._update_and_publish("record_failed", params, event)

    async def release(self, request: DeliveryRequest, claim: Claim, error: str) -> None:
        params = {"idempotency_key": request.idempotency_key, "claim": claim.token, "error": error}
        async with self._transaction("release") as conn:
            await conn.execute(statement("release", self.schema), params)

    async def purge_before(self, cutoff: datetime, limit: int) -> int:
        async with self._transaction("purge") as conn:
            cur = await conn.execute(
                statement("purge_before", self.schema), {"cutoff": cutoff, "limit": limit}
            )
            return int(cur.rowcount)

    async def _update_and_publish(self, name: str, params: dict[str, Any], event: Event) -> bool:
        async with self._transaction(name) as conn:
            cur = await conn.execute(statement(name, self.schema), params)
            if await cur.fetchone() is None:
                return False
            await self._publish(event, conn)
        return True
