"""The nightly cleanup of the email service: old finished delivery-log rows are purged in
batches; recent rows and keys still being sent are kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from insightdesk.email.cleanup import purge_delivery_log
from insightdesk.email.delivery_log import PgDeliveryLog
from insightdesk.shared.contracts import Event

NOW = datetime.now(UTC)


async def add_row(pool: AsyncConnectionPool[Any], key: str, status: str, days_ago: float) -> None:
    at = NOW - timedelta(days=days_ago)
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO email.delivery_log (idempotency_key, recipient, template, locale, "
            "provider, status, message_id, attempt, created_at, updated_at, delivered_at, "
            "claimed_until) VALUES (%s, 'a@example.com', 'welcome', 'en', 'file', %s, %s, 1, "
            "%s, %s, %s, %s)",
            (
                key,
                status,
                f"<{key}@desk>",
                at,
                at,
                at if status == "delivered" else None,
                at if status == "sending" else None,
            ),
        )


async def keys(pool: AsyncConnectionPool[Any]) -> set[str]:
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT idempotency_key FROM email.delivery_log")
        return {r[0] for r in await cur.fetchall()}


async def test_old_finished_rows_are_purged_in_batches_and_the_rest_kept(
    email_pool: AsyncConnectionPool[Any],
) -> None:
    async def publish(event: Event, conn: psycopg.AsyncConnection[Any]) -> object:
        raise AssertionError("purging publishes nothing")

    delivery_log = PgDeliveryLog(lambda: email_pool, publish)
    for i in range(5):
        await add_row(email_pool, f"old-delivered-{i}", "delivered", 120 + i)
    await add_row(email_pool, "old-failed", "failed", 100)
    await add_row(email_pool, "old-sending", "sending", 100)
    await add_row(email_pool, "recent", "delivered", 10)

    result = await purge_delivery_log(
        delivery_log=delivery_log, now=NOW, retention_days=90, batch_size=2
    )
    again = await purge_delivery_log(delivery_log=delivery_log, now=NOW, retention_days=90)

    assert (result.rows, result.batches, result.finished) == (6, 4, True)
    assert again.rows == 0
    assert await keys(email_pool) == {"old-sending", "recent"}
