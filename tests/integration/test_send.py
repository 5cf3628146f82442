"""Sending jobs: options, validation, bulk, the caller's transaction, events and policies."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from insightdesk.shared.errors import InvalidArgument, InvalidQueueName, QueueNotFound
from insightdesk.shared.queue import (
    Job,
    JobOptions,
    JobState,
    NewJob,
    QueueClient,
    QueueOptions,
    QueuePolicy,
)

from .helpers import wait_until


async def _job_count(client: QueueClient) -> int:
    return sum(
        s.created + s.retry + s.active + s.completed + s.failed for s in await client.stats()
    )


async def test_send_applies_queue_defaults_and_job_overrides(client: QueueClient) -> None:
    await client.create_queue("mail", QueueOptions(retry_limit=5, retry_delay=3, expire_in=60))
    plain = await client.send("mail", {"to": "a@example.com"})
    tuned = await client.send("mail", {"to": "b"}, JobOptions(retry_limit=1, priority=7))
    assert plain is not None and tuned is not None
    a, b = await client.get_job(plain), await client.get_job(tuned)
    assert (a.retry_limit, a.retry_delay, a.expire_in, a.priority) == (5, 3.0, 60.0, 0)
    assert (b.retry_limit, b.priority) == (1, 7)
    assert a.data == {"to": "a@example.com"}
    assert a.state is JobState.CREATED


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda c: c.send("missing", {}), QueueNotFound),
        (lambda c: c.send("bad name!", {}), InvalidQueueName),
        (lambda c: c.send("q", {"x": object()}), InvalidArgument),
        (lambda c: c.send("q", {"x": float("nan")}), InvalidArgument),
        (lambda c: c.send("q", {"x": "nul\x00"}), InvalidArgument),
        (lambda c: c.send("q", {}, JobOptions(start_after=-1)), InvalidArgument),
        (lambda c: c.send("q", {}, JobOptions(start_after=datetime(2030, 1, 1))), InvalidArgument),  # noqa: DTZ001
        (lambda c: c.send("q", {}, JobOptions(retry_limit=-1)), InvalidArgument),
        (lambda c: c.send("q", {}, JobOptions(expire_in=0)), InvalidArgument),
        (lambda c: c.send("q", {}, JobOptions(debounce=True)), InvalidArgument),
        (lambda c: c.send_many("q", [{"ok": 1}, {"bad": {1, 2}}]), InvalidArgument),
    ],
)
async def test_bad_input_is_rejected_with_a_clear_error_and_writes_nothing(
    client: QueueClient, call: object, error: type[Exception]
) -> None:
    await client.create_queue("q")
    with pytest.raises(error):
        await call(client)  # type: ignore[operator]
    assert await _job_count(client) == 0


async def test_send_many_inserts_thousands_in_one_call_in_order(client: QueueClient) -> None:
    await client.create_queue("bulk")
    ids = await client.send_many("bulk", [{"i": i} for i in range(5000)])
    assert len(ids) == 5000 and all(ids)
    assert len(set(ids)) == 5000
    sample = await client.get_job(ids[4321])  # type: ignore[arg-type]
    assert sample.data == {"i": 4321}


async def test_send_many_with_per_job_options_and_rejections(client: QueueClient) -> None:
    await client.create_queue("mixed")
    fixed = uuid.uuid4()
    await client.send("mixed", {"first": True}, JobOptions(id=fixed))
    ids = await client.send_many(
        "mixed",
        [
            NewJob({"a": 1}, JobOptions(priority=3)),
            NewJob({"dup": 1}, JobOptions(id=fixed)),
            {"b": 2},
        ],
    )
    assert ids[0] is not None and ids[1] is None and ids[2] is not None
    assert (await client.get_job(ids[0])).priority == 3


async def test_caller_supplied_id_makes_send_idempotent(client: QueueClient) -> None:
    await client.create_queue("idem")
    job_id = uuid.uuid4()
    assert await client.send("idem", {"n": 1}, JobOptions(id=job_id)) == job_id
    assert await client.send("idem", {"n": 2}, JobOptions(id=job_id)) is None
    assert (await client.get_job(job_id)).data == {"n": 1}


async def test_send_in_psycopg_transaction_rolls_back_and_commits_with_it(
    client: QueueClient, db_dsn: str
) -> None:
    await client.create_queue("outbox")
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        async with conn.transaction(force_rollback=True):
            rolled = await client.send("outbox", {"n": 1}, conn=conn)
        assert rolled is not None
        handled: list[object] = []

        async def handler(job: Job) -> None:
            handled.append(job.data)

        # poll_interval is long: only the NOTIFY delivered at commit can wake the worker in time.
        await client.work("outbox", handler, poll_interval=60)
        await asyncio.sleep(0.3)
        async with conn.transaction():
            kept = await client.send("outbox", {"n": 2}, conn=conn)
        assert kept is not None

        async def seen() -> bool:
            return handled == [{"n": 2}]

        await wait_until(seen, timeout=5)
    assert [j.id for j in await client.find_jobs("outbox")] == [kept]


async def test_send_in_sqlalchemy_session_joins_its_transaction(
    client: QueueClient, db_dsn: str
) -> None:
    await client.create_queue("orm")
    engine = create_async_engine(
        db_dsn.replace("postgresql://", "postgresql+psycopg://", 1)
        if db_dsn.startswith("postgresql://")
        else "postgresql+psycopg:///?" + db_dsn.replace(" ", "&")
    )
    try:
        async with AsyncSession(engine) as session:
            await session.execute(text("CREATE TABLE note (body text)"))
            await session.execute(text("INSERT INTO note VALUES ('x')"))
            await client.send("orm", {"note": "x"}, conn=session)
            await session.rollback()
        assert await client.find_jobs("orm") == []
        async with AsyncSession(engine) as session:
            await session.execute(text("CREATE TABLE note (body text)"))
            job_id = await client.send("orm", {"note": "y"}, conn=session)
            await session.commit()
        assert job_id is not None
        assert (await client.get_job(job_id)).data == {"note": "y"}
    finally:
        await engine.dispose()


async def test_conn_of_another_driver_is_refused(client: QueueClient) -> None:
    await client.create_queue("q")
    with pytest.raises(InvalidArgument, match="postgresql\\+psycopg"):
        await client.send("q", {}, conn=object())


async def test_publish_fans_out_to_every_subscribed_queue_atomically(
    client: QueueClient, db_dsn: str
) -> None:
    for name in ("email", "sla", "reports"):
        await client.create_queue(name)
    await client.subscribe("ticket.created", "email")
    await client.subscribe("ticket.created", "sla")
    await client.subscribe("ticket.created", "sla")  # idempotent
    ids = await client.publish("ticket.created", {"ticket": 7})
    assert len(ids) == 2
    assert {(await client.get_job(i)).name for i in ids} == {"email", "sla"}
    assert await client.publish("nobody.listens", {}) == []
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        async with conn.transaction(force_rollback=True):
            assert len(await client.publish("ticket.created", {"ticket": 8}, conn=conn)) == 2
    assert len(await client.find_jobs("email")) == 1
    with pytest.raises(QueueNotFound):
        await client.subscribe("ticket.created", "missing")


async def test_concurrent_sends_with_one_singleton_key_create_exactly_one_job(
    client: QueueClient,
) -> None:
    await client.create_queue("throttle")
    opts = JobOptions(singleton_key="ticket-1", singleton_seconds=60)
    results = await asyncio.gather(*(client.send("throttle", {"n": n}, opts) for n in range(40)))
    assert sum(r is not None for r in results) == 1
    assert len(await client.find_jobs("throttle", singleton_key="ticket-1")) == 1


async def test_debounce_moves_a_throttled_job_to_the_next_slot(client: QueueClient) -> None:
    await client.create_queue("debounce")
    opts = JobOptions(singleton_key="k", singleton_seconds=3600, debounce=True)
    first = await client.send("debounce", {"n": 1}, opts)
    second = await client.send("debounce", {"n": 2}, opts)
    third = await client.send("debounce", {"n": 3}, opts)
    assert first is not None and second is not None and third is None
    a, b = await client.get_job(first), await client.get_job(second)
    assert a.singleton_on is not None and b.singleton_on is not None
    assert b.singleton_on - a.singleton_on == timedelta(hours=1)
    assert b.start_after == b.singleton_on  # it waits for its slot


@pytest.mark.parametrize(
    ("policy", "accepted"),
    [
        (QueuePolicy.STANDARD, 3),
        (QueuePolicy.SHORT, 1),
        (QueuePolicy.SINGLETON, 3),
        (QueuePolicy.STATELY, 1),
        (QueuePolicy.EXCLUSIVE, 1),
    ],
)
async def test_queue_policies_limit_queued_jobs_per_key(
    client: QueueClient, policy: QueuePolicy, accepted: int
) -> None:
    await client.create_queue("p", QueueOptions(policy=policy))
    opts = JobOptions(singleton_key="same")
    results = await asyncio.gather(*(client.send("p", {"n": n}, opts) for n in range(3)))
    assert sum(r is not None for r in results) == accepted
    # another key is independent
    assert await client.send("p", {}, JobOptions(singleton_key="other")) is not None


async def test_start_after_accepts_an_instant_or_a_delay(client: QueueClient) -> None:
    await client.create_queue("later")
    at = datetime.now(UTC) + timedelta(hours=2)
    by_instant = await client.send("later", {}, JobOptions(start_after=at))
    by_delay = await client.send("later", {}, JobOptions(start_after=timedelta(minutes=5)))
    assert by_instant is not None and by_delay is not None
    assert abs((await client.get_job(by_instant)).start_after - at) < timedelta(milliseconds=1)
    delayed = (await client.get_job(by_delay)).start_after - datetime.now(UTC)
    assert timedelta(minutes=4) < delayed <= timedelta(minutes=5)
    assert await client.ready_count("later") == 0
