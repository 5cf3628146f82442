"""The delivery log in PostgreSQL: the claim rules that keep one key from being sent twice, and
events committed (or not) with the outcome they announce."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from insightdesk.email.delivery import Claim, ClaimState, DeliveryRequest
from insightdesk.email.delivery_log import PgDeliveryLog
from insightdesk.email.messages import DeliveryReceipt
from insightdesk.shared.contracts import EmailDelivered, EmailFailed, Event
from insightdesk.shared.queue import QueueClient

NOW = datetime(2025, 3, 1, tzinfo=UTC)


def request(
    job_id: uuid.UUID, *, key: str = "k-1", lease: float = 60.0, attempt: int = 1
) -> DeliveryRequest:
    return DeliveryRequest(
        idempotency_key=key,
        recipient="ada@example.com",
        template="welcome",
        locale="en",
        provider="file",
        message_id="<m@desk.example>",
        trace_id="ab" * 16,
        job_id=job_id,
        attempt=attempt,
        lease_seconds=lease,
    )


def delivered(key: str = "k-1") -> EmailDelivered:
    return EmailDelivered(
        occurred_at=NOW,
        idempotency_key=key,
        to="ada@example.com",
        template="welcome",
        provider="file",
        provider_message_id="f.eml",
    )


def failed(key: str = "k-1") -> EmailFailed:
    return EmailFailed(
        occurred_at=NOW, idempotency_key=key, to="ada@example.com", template="welcome", error="no"
    )


@pytest.fixture
async def pool(email_dsn: str) -> AsyncIterator[AsyncConnectionPool[Any]]:
    async with AsyncConnectionPool(
        email_dsn, min_size=1, max_size=4, kwargs={"autocommit": True}
    ) as p:
        yield p


@pytest.fixture
def published() -> list[Event]:
    return []


@pytest.fixture
def log(
    pool: AsyncConnectionPool[Any], published: list[Event], client: QueueClient
) -> PgDeliveryLog:
    async def publish(event: Event, conn: psycopg.AsyncConnection[Any]) -> object:
        published.append(event)
        return await client.publish(event.name, event.model_dump(mode="json"), conn=conn)

    return PgDeliveryLog(lambda: pool, publish, retry_pause=0.01)


async def row(pool: AsyncConnectionPool[Any], key: str = "k-1") -> dict[str, Any]:
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute("SELECT * FROM email.delivery_log WHERE idempotency_key = %s", (key,))
        found = await cur.fetchone()
    assert found is not None
    return dict(found)


async def test_a_first_claim_writes_a_sending_row_with_trace_and_attempt(
    log: PgDeliveryLog, pool: AsyncConnectionPool[Any]
) -> None:
    job = uuid.uuid4()
    claim = await log.claim(request(job, attempt=2))
    assert claim.state is ClaimState.CLAIMED and claim.token is not None
    stored = await row(pool)
    assert stored["status"] == "sending" and stored["claim"] == claim.token
    assert stored["trace_id"] == "ab" * 16 and stored["attempt"] == 2 and stored["job_id"] == job
    assert stored["recipient"] == "ada@example.com" and stored["template"] == "welcome"
    assert stored["created_at"] is not None and stored["claimed_until"] > stored["created_at"]


async def test_another_job_waits_while_the_lease_is_live(log: PgDeliveryLog) -> None:
    await log.claim(request(uuid.uuid4(), lease=60))
    other = await log.claim(request(uuid.uuid4()))
    assert other.state is ClaimState.BUSY and 55 < other.retry_in <= 60


async def test_the_same_job_takes_its_claim_back_after_a_crash(
    log: PgDeliveryLog, pool: AsyncConnectionPool[Any]
) -> None:
    job = uuid.uuid4()
    first = await log.claim(request(job, lease=600))
    again = await log.claim(request(job, lease=600, attempt=2))
    assert again.state is ClaimState.CLAIMED and again.token != first.token
    assert (await row(pool))["attempt"] == 2


async def test_an_expired_lease_is_taken_over_by_another_job(log: PgDeliveryLog) -> None:
    await log.claim(request(uuid.uuid4(), lease=0.05))
    await asyncio.sleep(0.1)
    assert (await log.claim(request(uuid.uuid4()))).state is ClaimState.CLAIMED


async def test_a_delivered_key_is_never_claimed_again(
    log: PgDeliveryLog, pool: AsyncConnectionPool[Any], published: list[Event]
) -> None:
    job = uuid.uuid4()
    claim = await log.claim(request(job))
    receipt = DeliveryReceipt("file", "f.eml")
    assert await log.record_delivered(request(job), claim, receipt, delivered())
    for other_job in (job, uuid.uuid4()):
        again = await log.claim(request(other_job))
        assert again == Claim(ClaimState.DELIVERED, provider_message_id="f.eml")
    stored = await row(pool)
    assert stored["status"] == "delivered" and stored["delivered_at"] is not None
    assert stored["claim"] is None and stored["provider_message_id"] == "f.eml"
    # a second record (a duplicate send) is not announced again
    assert not await log.record_delivered(request(job), claim, receipt, delivered())
    assert published == [delivered()]


async def test_a_failed_key_can_be_sent_again_by_a_later_job(
    log: PgDeliveryLog, pool: AsyncConnectionPool[Any]
) -> None:
    job = uuid.uuid4()
    claim = await log.claim(request(job))
    assert await log.record_failed(request(job), claim, "unknown template", failed())
    stored = await row(pool)
    assert stored["status"] == "failed" and stored["error"] == "unknown template"
    assert (await log.claim(request(uuid.uuid4()))).state is ClaimState.CLAIMED  # redrive


async def test_a_lost_claim_records_no_failure(log: PgDeliveryLog, published: list[Event]) -> None:
    job = uuid.uuid4()
    stale = await log.claim(request(job, lease=0.05))
    await asyncio.sleep(0.1)
    await log.claim(request(uuid.uuid4()))  # someone else holds it now
    assert not await log.record_failed(request(job), stale, "late", failed())
    assert published == []


async def test_release_ends_the_lease_so_another_job_may_send(log: PgDeliveryLog) -> None:
    job = uuid.uuid4()
    claim = await log.claim(request(job, lease=600))
    await log.release(request(job), claim, "429")
    assert (await log.claim(request(uuid.uuid4()))).state is ClaimState.CLAIMED


async def test_concurrent_first_claims_let_exactly_one_job_send(log: PgDeliveryLog) -> None:
    claims = await asyncio.gather(*(log.claim(request(uuid.uuid4())) for _ in range(8)))
    assert [c.state for c in claims].count(ClaimState.CLAIMED) == 1


async def test_the_event_commits_with_the_log_row(log: PgDeliveryLog, client: QueueClient) -> None:
    await client.create_queue("audit")
    await client.subscribe("email.delivered", "audit")
    job = uuid.uuid4()
    claim = await log.claim(request(job))
    await log.record_delivered(request(job), claim, DeliveryReceipt("file", "f.eml"), delivered())
    [event_job] = await client.find_jobs("audit")
    assert event_job.data["idempotency_key"] == "k-1"


async def test_when_publishing_fails_the_log_row_rolls_back(
    pool: AsyncConnectionPool[Any],
) -> None:
    async def broken(event: Event, conn: psycopg.AsyncConnection[Any]) -> object:
        raise RuntimeError("queue unavailable")

    log = PgDeliveryLog(lambda: pool, broken)
    job = uuid.uuid4()
    claim = await log.claim(request(job))
    with pytest.raises(RuntimeError):
        await log.record_failed(request(job), claim, "no", failed())
    assert (await row(pool))["status"] == "sending"
