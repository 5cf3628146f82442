"""How a PgBroker handler's ending maps onto the engine: complete, retry, snooze, dead letter."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from faststream import AckPolicy

from insightdesk.shared.queue import JobState, QueueClient, RetryLater, Snooze
from insightdesk.shared.queue.broker import (
    NackMessage,
    PgBroker,
    PgMessage,
    QueueOptions,
    RejectMessage,
    SnoozeMessage,
)

from .helpers import wait_for_state, wait_until


@pytest.fixture
async def broker(db_dsn: str) -> AsyncIterator[PgBroker]:
    broker = PgBroker(db_dsn, poll_interval=0.2, logger=None)
    yield broker
    await broker.stop()


async def test_an_exception_retries_per_queue_policy_then_dead_letters(
    broker: PgBroker, client: QueueClient
) -> None:
    attempts: list[int] = []

    @broker.subscriber(
        "flaky", policy=QueueOptions(retry_limit=2, retry_delay=0.1, dead_letter="flaky.dead")
    )
    async def flaky(body: dict[str, Any], message: PgMessage) -> None:
        attempts.append(message.attempt)
        raise RuntimeError(f"boom {message.attempt}")

    await broker.start()
    job_id = await broker.publish({"n": 1}, "flaky")
    assert job_id is not None
    await wait_for_state(client, job_id, JobState.FAILED, timeout=15)
    assert attempts == [1, 2, 3]
    info = await client.get_job(job_id)
    assert info.retry_count == 2
    assert info.output["type"] == "RuntimeError" and info.output["message"] == "boom 3"
    [letter] = await client.find_jobs("flaky.dead")
    assert letter.data == {"n": 1}
    assert letter.headers is not None and letter.headers["dead_letter"]["queue"] == "flaky"


async def test_nack_with_delay_retries_later_and_uses_an_attempt(
    broker: PgBroker, client: QueueClient
) -> None:
    @broker.subscriber("later", policy=QueueOptions(retry_limit=3))
    async def later(body: dict[str, Any]) -> None:
        raise NackMessage(delay=3600)

    await broker.start()
    job_id = await broker.publish({}, "later")
    assert job_id is not None
    await wait_for_state(client, job_id, JobState.RETRY)
    info = await client.get_job(job_id)
    assert info.retry_count == 1
    assert timedelta(minutes=59) < info.start_after - datetime.now(UTC) <= timedelta(hours=1)


async def test_reject_dead_letters_at_once_without_retrying(
    broker: PgBroker, client: QueueClient
) -> None:
    calls: list[int] = []

    @broker.subscriber("strict", policy=QueueOptions(retry_limit=5, dead_letter="strict.dead"))
    async def strict(body: dict[str, Any]) -> None:
        calls.append(1)
        raise RejectMessage(reason="unknown template")

    await broker.start()
    job_id = await broker.publish({"template": "nope"}, "strict")
    assert job_id is not None
    await wait_for_state(client, job_id, JobState.FAILED)
    info = await client.get_job(job_id)
    assert info.retry_count == 0 and calls == [1]
    assert info.output["message"] == "unknown template"
    [letter] = await client.find_jobs("strict.dead")
    assert letter.data == {"template": "nope"}


async def test_snooze_postpones_without_using_an_attempt(
    broker: PgBroker, client: QueueClient
) -> None:
    runs: list[int] = []

    @broker.subscriber("nap", policy=QueueOptions(retry_limit=0))
    async def nap(body: dict[str, Any], message: PgMessage) -> str:
        runs.append(message.attempt)
        if len(runs) == 1:
            raise SnoozeMessage(0.3)
        if len(runs) == 2:
            raise Snooze(timedelta(seconds=0.3))  # the engine's own outcome works too
        return "woke"

    await broker.start()
    job_id = await broker.publish({}, "nap")
    assert job_id is not None
    await wait_for_state(client, job_id, JobState.COMPLETED)
    assert runs == [1, 1, 1]
    assert (await client.get_job(job_id)).output == "woke"


async def test_engine_retry_later_raised_by_a_handler_is_honoured(
    broker: PgBroker, client: QueueClient
) -> None:
    @broker.subscriber("busy", policy=QueueOptions(retry_limit=3))
    async def busy(body: dict[str, Any]) -> None:
        raise RetryLater(timedelta(hours=2), "provider busy")

    await broker.start()
    job_id = await broker.publish({}, "busy")
    assert job_id is not None
    await wait_for_state(client, job_id, JobState.RETRY)
    info = await client.get_job(job_id)
    assert info.start_after - datetime.now(UTC) > timedelta(hours=1, minutes=59)


async def test_ack_policy_ack_completes_even_when_the_handler_fails(
    broker: PgBroker, client: QueueClient
) -> None:
    @broker.subscriber("best-effort", ack_policy=AckPolicy.ACK)
    async def best_effort(body: dict[str, Any]) -> None:
        raise RuntimeError("ignored")

    await broker.start()
    job_id = await broker.publish({}, "best-effort")
    assert job_id is not None
    await wait_for_state(client, job_id, JobState.COMPLETED)


async def test_manual_ack_policy_lets_the_handler_decide(
    broker: PgBroker, client: QueueClient
) -> None:
    @broker.subscriber("manual", ack_policy=AckPolicy.MANUAL, policy=QueueOptions(retry_limit=0))
    async def manual(body: dict[str, Any], message: PgMessage) -> None:
        if body["ok"]:
            await message.ack()
        else:
            await message.reject("bad input")

    await broker.start()
    good = await broker.publish({"ok": True}, "manual")
    bad = await broker.publish({"ok": False}, "manual")
    assert good is not None and bad is not None
    await wait_for_state(client, good, JobState.COMPLETED)
    await wait_for_state(client, bad, JobState.FAILED)
    assert (await client.get_job(bad)).output["message"] == "bad input"


async def test_a_body_that_fails_validation_is_a_failed_attempt(
    broker: PgBroker, client: QueueClient
) -> None:
    @broker.subscriber("typed", policy=QueueOptions(retry_limit=0))
    async def typed(body: int) -> None: ...

    await broker.start()
    job_id = await broker.publish({"not": "an int"}, "typed")
    assert job_id is not None
    await wait_for_state(client, job_id, JobState.FAILED)
    assert "validation" in (await client.get_job(job_id)).output["message"].lower()


async def test_non_json_return_values_are_stored_as_json(
    broker: PgBroker, client: QueueClient
) -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

    @broker.subscriber("outputs")
    async def outputs(body: str) -> Any:
        return {"when": moment, "raw": b"bytes", "set": (1, 2)}

    await broker.start()
    job_id = await broker.publish("x", "outputs")
    assert job_id is not None
    await wait_for_state(client, job_id, JobState.COMPLETED)

    async def stored() -> bool:
        return (await client.get_job(job_id)).output is not None

    await wait_until(stored)
    assert (await client.get_job(job_id)).output == {
        "when": "2026-01-02T03:04:05Z",
        "raw": "bytes",
        "set": [1, 2],
    }
