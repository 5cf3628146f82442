"""PgBroker against real PostgreSQL: consume, publish, return values, DI, middlewares, routers.

Modelled on FastStream's own broker conformance suites (consume / publish / reply / router /
middlewares), with the job queue's specifics (job ids, options, stored outputs).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Annotated, Any

import pytest
from faststream import BaseMiddleware, Context, Depends, FastStream, Logger, StreamMessage
from pydantic import BaseModel

from insightdesk.shared.errors import QueueNotFound
from insightdesk.shared.queue import JobState, QueueClient
from insightdesk.shared.queue.broker import (
    JobOptions,
    PgBatchMessage,
    PgBroker,
    PgMessage,
    PgResponse,
    PgRoute,
    PgRoutePublisher,
    PgRouter,
    QueueOptions,
    QueuePolicy,
)

from .helpers import wait_for_state, wait_until


class Payload(BaseModel):
    i: int
    t: float | None = None


@pytest.fixture
async def broker(db_dsn: str) -> AsyncIterator[PgBroker]:
    broker = PgBroker(db_dsn, poll_interval=0.5, logger=logging.getLogger("tests.broker"))
    yield broker
    await broker.stop()


async def _received(seen: list[Any], n: int = 1, timeout: float = 10.0) -> None:
    async def enough() -> bool:
        return len(seen) >= n

    await wait_until(enough, timeout)


async def test_subscriber_consumes_a_pydantic_body_and_completes_the_job(
    broker: PgBroker, client: QueueClient
) -> None:
    seen: list[Payload] = []

    @broker.subscriber("in")
    async def handle(body: Payload) -> dict[str, int]:
        seen.append(body)
        return {"double": body.i * 2}

    await broker.start()
    job_id = await broker.publish(Payload(i=21), "in")
    assert isinstance(job_id, uuid.UUID)
    await wait_for_state(client, job_id, JobState.COMPLETED)
    assert seen == [Payload(i=21)]
    assert (await client.get_job(job_id)).output == {"double": 42}


async def test_start_creates_the_queue_and_applies_its_policy(
    broker: PgBroker, client: QueueClient
) -> None:
    @broker.subscriber("keyed", policy=QueueOptions(policy=QueuePolicy.SHORT, retry_limit=7))
    async def handle(body: dict[str, Any]) -> None: ...

    @broker.subscriber("plain", policy="exclusive")
    async def plain(body: dict[str, Any]) -> None: ...

    with pytest.raises(QueueNotFound):
        await client.get_queue("keyed")
    await broker.start()
    keyed = await client.get_queue("keyed")
    assert keyed["policy"] == "short" and keyed["retry_limit"] == 7
    assert (await client.get_queue("plain"))["policy"] == "exclusive"


async def test_consumes_jobs_sent_with_the_bare_engine(
    broker: PgBroker, client: QueueClient
) -> None:
    seen: list[Payload] = []

    @broker.subscriber("engine-sent", concurrency=4, max_records=2)
    async def handle(body: Payload, message: PgMessage) -> None:
        assert message.job.queue == "engine-sent"
        seen.append(body)

    await broker.start()
    await client.send_many("engine-sent", [{"i": n} for n in range(20)])
    await _received(seen, 20)
    assert sorted(p.i for p in seen) == list(range(20))


async def test_text_bytes_and_empty_bodies_arrive_as_sent(broker: PgBroker) -> None:
    seen: list[Any] = []

    @broker.subscriber("raw")
    async def handle(body: Any) -> None:
        seen.append(body)

    await broker.start()
    for body in ("plain text", b"\x00\xffbinary", b'{"a": 1}', None, [1, 2], 3.5):
        await broker.publish(body, "raw")
    await _received(seen, 6)
    assert sorted(seen, key=repr) == sorted(
        ["plain text", b"\x00\xffbinary", {"a": 1}, b"", [1, 2], 3.5], key=repr
    )


async def test_publish_applies_job_options_and_reports_rejections(
    broker: PgBroker, client: QueueClient
) -> None:
    await broker.start()
    await broker.declare_queue("opts", QueueOptions(policy=QueuePolicy.SHORT))
    first = await broker.publish(
        {"n": 1},
        "opts",
        options=JobOptions(
            priority=5, singleton_key="k", start_after=timedelta(hours=1), retry_limit=9
        ),
        headers={"x-tenant": "acme"},
    )
    assert first is not None
    info = await client.get_job(first)
    assert info.priority == 5 and info.retry_limit == 9 and info.state == JobState.CREATED
    assert info.headers is not None and info.headers["x-tenant"] == "acme"
    assert "correlation_id" in info.headers
    # short policy: one queued job per key, the second send is rejected
    assert await broker.publish({"n": 2}, "opts", options=JobOptions(singleton_key="k")) is None
    job_id = uuid.uuid4()
    assert await broker.publish({}, "opts", options=JobOptions(id=job_id)) == job_id


async def test_publish_to_an_unknown_queue_raises(broker: PgBroker) -> None:
    await broker.start()
    with pytest.raises(QueueNotFound):
        await broker.publish({}, "nowhere")


async def test_return_value_is_published_by_the_publisher_decorator(
    broker: PgBroker, client: QueueClient
) -> None:
    results: list[dict[str, int]] = []

    @broker.subscriber("results")
    async def collect(body: dict[str, int]) -> None:
        results.append(body)

    @broker.publisher("results", options=JobOptions(priority=3))
    @broker.subscriber("compute")
    async def compute(body: Payload) -> dict[str, int]:
        return {"square": body.i**2}

    await broker.start()
    await broker.publish(Payload(i=7), "compute")
    await _received(results)
    assert results == [{"square": 49}]
    [job] = await client.find_jobs("results")
    assert job.priority == 3


async def test_a_response_object_sets_headers_and_options_of_the_next_job(
    broker: PgBroker, client: QueueClient
) -> None:
    got: list[tuple[str, int]] = []

    @broker.subscriber("second")
    async def second(body: str, message: PgMessage) -> None:
        got.append((message.headers["step"], message.job.priority))

    @broker.publisher("second")
    @broker.subscriber("first")
    async def first(body: str) -> PgResponse:
        return PgResponse(body.upper(), headers={"step": "2"}, options=JobOptions(priority=8))

    await broker.start()
    await broker.publish("go", "first")
    await _received(got)
    assert got == [("2", 8)]


async def test_reply_to_sends_the_return_value_to_the_named_queue(broker: PgBroker) -> None:
    replies: list[Any] = []

    @broker.subscriber("answers")
    async def answers(body: Any, message: PgMessage) -> None:
        replies.append((body, message.correlation_id))

    @broker.subscriber("questions")
    async def questions(body: str) -> str:
        return f"re: {body}"

    await broker.start()
    await broker.publish("hello", "questions", reply_to="answers", correlation_id="c-1")
    await _received(replies)
    assert replies == [("re: hello", "c-1")]


async def test_request_waits_for_the_job_and_returns_its_output(broker: PgBroker) -> None:
    @broker.subscriber("rpc")
    async def rpc(body: Payload) -> dict[str, int]:
        return {"next": body.i + 1}

    await broker.start()
    answer = await broker.request(Payload(i=1), "rpc", timeout=10)
    assert await answer.decode() == {"next": 2}


async def test_publish_batch_sends_all_in_one_call(broker: PgBroker) -> None:
    seen: list[int] = []

    @broker.subscriber("many")
    async def handle(body: Payload) -> None:
        seen.append(body.i)

    await broker.start()
    ids = await broker.publish_batch(*(Payload(i=n) for n in range(5)), queue="many")
    assert len(ids) == 5 and all(ids)
    await _received(seen, 5)
    assert sorted(seen) == [0, 1, 2, 3, 4]


async def test_context_depends_and_logger_are_injected(broker: PgBroker) -> None:
    got: list[Any] = []

    def tenant(message: PgMessage) -> str:
        return str(message.headers.get("x-tenant", "none"))

    @broker.subscriber("di")
    async def handle(
        body: Payload,
        logger: Logger,
        message: PgMessage,
        correlation_id: Annotated[str, Context("message.correlation_id")],
        the_tenant: Annotated[str, Depends(tenant)],
        the_broker: Annotated[PgBroker, Context("broker")],
    ) -> None:
        logger.info("handling %s", body.i)
        got.append((body.i, correlation_id, the_tenant, the_broker is broker, message.attempt))

    await broker.start()
    await broker.publish(Payload(i=5), "di", headers={"x-tenant": "acme"}, correlation_id="cid")
    await _received(got)
    assert got == [(5, "cid", "acme", True, 1)]


async def test_broker_middlewares_wrap_consume_and_publish(db_dsn: str) -> None:
    events: list[str] = []

    class Recorder(BaseMiddleware):
        async def consume_scope(self, call_next: Any, msg: StreamMessage[Any]) -> Any:
            events.append(f"consume:{msg.raw_message.job.queue}")
            return await call_next(msg)

        async def publish_scope(self, call_next: Any, cmd: Any) -> Any:
            events.append(f"publish:{cmd.destination}")
            return await call_next(cmd)

    broker = PgBroker(db_dsn, middlewares=[Recorder], logger=None)
    done: list[int] = []

    @broker.subscriber("mw")
    async def handle(body: Payload) -> None:
        done.append(body.i)

    try:
        await broker.start()
        await broker.publish(Payload(i=1), "mw")
        await _received(done)
    finally:
        await broker.stop()
    assert events == ["publish:mw", "consume:mw"]


async def test_router_prefixes_queues_and_routes_declare_publishers(
    broker: PgBroker, client: QueueClient
) -> None:
    results: list[Any] = []

    async def square(body: Payload) -> int:
        return body.i**2

    router = PgRouter(
        "tickets.",
        handlers=[PgRoute(square, "square", publishers=[PgRoutePublisher("out")])],
    )

    @router.subscriber("out")
    async def out(body: int) -> None:
        results.append(body)

    broker.include_router(router)
    await broker.start()
    assert {q["name"] for q in await client.list_queues()} >= {"tickets.square", "tickets.out"}
    await broker.publish(Payload(i=4), "tickets.square")
    await _received(results)
    assert results == [16]


async def test_ping_and_lifecycle_hooks(db_dsn: str) -> None:
    broker = PgBroker(db_dsn, logger=None)
    assert await broker.ping() is False
    calls: list[str] = []
    app = FastStream(broker, logger=None)

    @app.on_startup
    async def on_startup() -> None:
        calls.append("startup")

    @app.after_startup
    async def after_startup() -> None:
        calls.append(f"after_startup:{await broker.ping(2)}")

    @app.after_shutdown
    async def after_shutdown() -> None:
        calls.append(f"after_shutdown:{await broker.ping(2)}")

    task = asyncio.create_task(app.run())

    async def started() -> bool:
        return len(calls) >= 2

    await wait_until(started)
    app.exit()
    await asyncio.wait_for(task, 10)
    assert calls == ["startup", "after_startup:True", "after_shutdown:False"]


async def test_stop_finishes_in_flight_jobs_and_releases_the_rest(
    db_dsn: str, client: QueueClient
) -> None:
    broker = PgBroker(db_dsn, graceful_timeout=5, logger=None)
    started = asyncio.Event()
    release = asyncio.Event()

    @broker.subscriber("slow", concurrency=1, max_records=5)
    async def slow(body: Payload) -> None:
        started.set()
        await release.wait()

    await broker.start()
    ids = await broker.publish_batch(*(Payload(i=n) for n in range(3)), queue="slow")
    await asyncio.wait_for(started.wait(), 10)
    stopping = asyncio.create_task(broker.stop())
    await asyncio.sleep(0.2)
    release.set()
    await asyncio.wait_for(stopping, 10)
    states = [(await client.get_job(i)).state for i in ids if i is not None]
    assert states.count(JobState.COMPLETED) >= 1
    assert all(s in {JobState.COMPLETED, JobState.CREATED} for s in states)
    for i in ids:
        assert i is not None and (await client.get_job(i)).retry_count == 0


async def test_batch_subscriber_receives_lists_of_validated_bodies(
    broker: PgBroker, client: QueueClient
) -> None:
    batches: list[list[Payload]] = []

    @broker.subscriber("bulk", batch=True, max_records=4, concurrency=2)
    async def handle(bodies: list[Payload], message: PgMessage) -> list[int]:
        assert all(isinstance(b, Payload) for b in bodies)
        assert len(message.batch_headers) == len(bodies)
        batches.append(bodies)
        return [b.i * 2 for b in bodies]

    await broker.start()
    ids = await broker.publish_batch(*(Payload(i=n) for n in range(10)), queue="bulk")

    async def all_seen() -> bool:
        return sum(len(b) for b in batches) >= 10

    await wait_until(all_seen)
    assert sorted(p.i for b in batches for p in b) == list(range(10))
    assert max(len(b) for b in batches) <= 4
    for n, job_id in enumerate(ids):
        assert job_id is not None
        await wait_for_state(client, job_id, JobState.COMPLETED)
        assert (await client.get_job(job_id)).output == n * 2


async def test_batch_subscriber_failure_retries_every_job_of_the_batch(
    broker: PgBroker, client: QueueClient
) -> None:
    attempts: list[list[int]] = []

    @broker.subscriber(
        "bulk-flaky",
        batch=True,
        max_records=10,
        concurrency=1,
        policy=QueueOptions(retry_limit=3, retry_delay=0),
    )
    async def handle(bodies: list[Payload], message: PgBatchMessage) -> None:
        attempts.append([job.retry_count for job in message.jobs])
        if len(attempts) == 1:
            raise RuntimeError("boom")

    await client.create_queue("bulk-flaky", QueueOptions(retry_limit=3, retry_delay=0))
    await broker.connect()  # sent before the worker starts: the first claim takes all three
    ids = await broker.publish_batch(*(Payload(i=n) for n in range(3)), queue="bulk-flaky")
    await broker.start()
    for job_id in ids:
        assert job_id is not None
        await wait_for_state(client, job_id, JobState.COMPLETED)
        assert (await client.get_job(job_id)).retry_count == 1
    assert attempts[0] == [0, 0, 0]
    assert sorted(r for a in attempts[1:] for r in a) == [1, 1, 1]
