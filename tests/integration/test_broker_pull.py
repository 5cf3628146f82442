"""Pulling by hand from a PgBroker subscriber: get_one and async iteration, settled manually."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from faststream.exceptions import IncorrectState
from pydantic import BaseModel

from insightdesk.shared.queue import JobState, QueueClient
from insightdesk.shared.queue.broker import PgBroker, QueueOptions, TestPgBroker
from insightdesk.shared.queue.broker.message import PgBatchMessage, PgMessage


class Payload(BaseModel):
    i: int


@pytest.fixture
async def broker(db_dsn: str) -> AsyncIterator[PgBroker]:
    broker = PgBroker(db_dsn, poll_interval=0.5, logger=logging.getLogger("tests.broker"))
    yield broker
    await broker.stop()


async def test_get_one_returns_a_decoded_message_and_ack_completes_it(
    broker: PgBroker, client: QueueClient
) -> None:
    sub = broker.subscriber("pull")
    await broker.start()
    job_id = await broker.publish(Payload(i=7), "pull")

    msg = await sub.get_one(timeout=5.0)
    assert isinstance(msg, PgMessage)
    assert msg.job_id == job_id
    assert await msg.decode() == {"i": 7}
    assert Payload.model_validate(await msg.decode()) == Payload(i=7)
    assert (await client.get_job(msg.job_id)).state == JobState.ACTIVE

    await msg.ack()
    info = await client.get_job(msg.job_id)
    assert info.state == JobState.COMPLETED
    assert msg.raw_message.settled is True  # type: ignore[attr-defined]
    await msg.nack()  # already settled: nothing changes
    assert (await client.get_job(msg.job_id)).state == JobState.COMPLETED


async def test_nack_with_delay_retries_later_using_an_attempt(
    broker: PgBroker, client: QueueClient
) -> None:
    sub = broker.subscriber("pull", policy=QueueOptions(retry_limit=3))
    await broker.start()
    await broker.publish({"n": 1}, "pull")

    msg = await sub.get_one(timeout=5.0)
    assert isinstance(msg, PgMessage)
    before = datetime.now(UTC)
    await msg.nack(delay=30)
    info = await client.get_job(msg.job_id)
    assert info.state == JobState.RETRY and info.retry_count == 1
    assert 25 < (info.start_after - before).total_seconds() < 35
    assert info.output["type"] == "Nacked"


async def test_nack_without_delay_uses_the_backoff_and_snooze_keeps_the_attempt(
    broker: PgBroker, client: QueueClient
) -> None:
    sub = broker.subscriber("pull", policy=QueueOptions(retry_limit=3))
    await broker.start()
    await broker.publish({"n": 1}, "pull")

    msg = await sub.get_one(timeout=5.0)
    assert isinstance(msg, PgMessage)
    await msg.nack()  # retry_delay 0: ready again at once
    again = await sub.get_one(timeout=5.0)
    assert isinstance(again, PgMessage)
    assert again.job_id == msg.job_id and again.attempt == 2

    await again.nack(delay=0, count_attempt=False)
    info = await client.get_job(msg.job_id)
    assert info.state == JobState.RETRY and info.retry_count == 1


async def test_reject_dead_letters_at_once(broker: PgBroker, client: QueueClient) -> None:
    sub = broker.subscriber("pull", policy=QueueOptions(retry_limit=5, dead_letter="dlq"))
    await broker.start()
    await broker.publish({"n": 1}, "pull")

    msg = await sub.get_one(timeout=5.0)
    assert isinstance(msg, PgMessage)
    await msg.reject("bad input")
    info = await client.get_job(msg.job_id)
    assert info.state == JobState.FAILED and info.retry_count == 0
    assert info.output["message"] == "bad input"
    (letter,) = await client.find_jobs("dlq")
    assert letter.data == {"n": 1}


async def test_get_one_on_an_empty_queue_returns_none_after_the_timeout(
    broker: PgBroker,
) -> None:
    sub = broker.subscriber("empty")
    await broker.start()
    started = time.monotonic()
    assert await sub.get_one(timeout=0.5) is None
    assert 0.45 <= time.monotonic() - started < 2.0


async def test_get_one_waits_for_a_job_sent_meanwhile(broker: PgBroker) -> None:
    sub = broker.subscriber("later")
    await broker.start()

    async def send_soon() -> None:
        await asyncio.sleep(0.3)
        await broker.publish({"n": 9}, "later")

    sender = asyncio.create_task(send_soon())
    msg = await sub.get_one(timeout=5.0)
    await sender
    assert msg is not None and await msg.decode() == {"n": 9}
    await msg.ack()


async def test_async_iteration_receives_every_message(
    broker: PgBroker, client: QueueClient
) -> None:
    sub = broker.subscriber("stream")
    await broker.start()
    ids = await broker.publish_batch(*({"i": i} for i in range(5)), queue="stream")

    seen: list[int] = []
    async with asyncio.timeout(10):
        async for msg in sub:
            body = await msg.decode()
            assert isinstance(body, dict)
            seen.append(body["i"])
            await msg.ack()
            if len(seen) == 5:
                break
    assert sorted(seen) == list(range(5))
    for job_id in ids:
        assert job_id is not None
        assert (await client.get_job(job_id)).state == JobState.COMPLETED


async def test_async_iteration_ends_when_the_broker_stops(broker: PgBroker) -> None:
    sub = broker.subscriber("stream")
    await broker.start()

    async def drain() -> list[PgMessage]:
        return [msg async for msg in sub]

    task = asyncio.create_task(drain())
    await asyncio.sleep(0.3)
    await broker.stop()
    assert await asyncio.wait_for(task, 5) == []


async def test_a_batch_subscriber_pulls_a_batch(broker: PgBroker, client: QueueClient) -> None:
    sub = broker.subscriber("batch", batch=True, max_records=3)
    await broker.start()
    await broker.publish_batch(*({"i": i} for i in range(4)), queue="batch")

    msg = await sub.get_one(timeout=5.0)
    assert isinstance(msg, PgBatchMessage)
    assert [b["i"] for b in await msg.decode()] == [0, 1, 2]  # type: ignore[union-attr]
    await msg.ack()
    for job in msg.jobs:
        assert (await client.get_job(job.id)).state == JobState.COMPLETED


async def test_pulling_is_refused_with_handlers_or_without_a_database(
    broker: PgBroker,
) -> None:
    sub = broker.subscriber("handled")

    @sub
    async def handle(body: dict[str, int]) -> None: ...

    plain = broker.subscriber("plain")
    await broker.start()
    with pytest.raises(IncorrectState, match="registered handlers"):
        await sub.get_one(timeout=0.1)
    await broker.stop()

    async with TestPgBroker(broker):
        with pytest.raises(IncorrectState, match="TestPgBroker"):
            await plain.get_one(timeout=0.1)
        with pytest.raises(IncorrectState, match="TestPgBroker"):
            async for _ in plain:
                pass
