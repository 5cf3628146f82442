"""One conformance suite, run twice: against real PostgreSQL and against ``TestPgBroker``.

Modelled on FastStream's broker test cases (consume, publish, reply, router, middlewares,
dependency injection), so a service unit-tested in memory behaves the same in production.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

import pytest
from faststream import BaseMiddleware, Context, Depends, Logger, StreamMessage
from faststream.response import Response
from pydantic import BaseModel

from insightdesk.shared.errors import QueueNotFound
from insightdesk.shared.queue.broker import (
    PgBroker,
    PgMessage,
    PgRouter,
    TestPgBroker,
)

from .helpers import wait_until

Check = Callable[[], bool]


class Ticket(BaseModel):
    id: int
    subject: str = ""


class Harness:
    """Runs a broker either for real (``db_dsn``) or in memory, and waits for effects."""

    def __init__(self, dsn: str | None) -> None:
        self.dsn = dsn

    @property
    def real(self) -> bool:
        return self.dsn is not None

    def broker(self, **kwargs: Any) -> PgBroker:
        kwargs.setdefault("logger", logging.getLogger("tests.conformance"))
        return PgBroker(self.dsn or "postgresql://unused/db", poll_interval=0.5, **kwargs)

    @asynccontextmanager
    async def running(self, *brokers: PgBroker) -> AsyncIterator[PgBroker]:
        if not self.real:
            async with TestPgBroker(*brokers):
                yield brokers[0]
            return
        try:
            for b in brokers:
                await b.start()
            yield brokers[0]
        finally:
            for b in brokers:
                await b.stop()

    async def until(self, check: Check, timeout: float = 10.0) -> None:
        """In memory a publish has run its handlers already; for real, wait for them."""

        async def ready() -> bool:
            return check()

        if self.real:
            await wait_until(ready, timeout)
        assert check()


@pytest.fixture(params=["postgres", "memory"])
def harness(request: pytest.FixtureRequest) -> Harness:
    if request.param == "memory":
        return Harness(None)
    return Harness(request.getfixturevalue("db_dsn"))


async def test_consume_validates_the_body_into_the_model(harness: Harness) -> None:
    broker = harness.broker()
    got: list[Ticket] = []

    @broker.subscriber("tickets")
    async def handle(ticket: Ticket) -> None:
        got.append(ticket)

    async with harness.running(broker) as br:
        await br.publish(Ticket(id=1, subject="hi"), "tickets")
        await br.publish({"id": 2}, "tickets")
        await harness.until(lambda: len(got) == 2)
    assert sorted(got, key=lambda t: t.id) == [Ticket(id=1, subject="hi"), Ticket(id=2)]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("text", "text"),
        (b"\x01\x02", b"\x01\x02"),
        ({"a": [1, None]}, {"a": [1, None]}),
        ([1, "x"], [1, "x"]),
        (None, b""),
        (1.5, 1.5),
    ],
)
async def test_bodies_arrive_as_sent(harness: Harness, body: Any, expected: Any) -> None:
    broker = harness.broker()
    got: list[Any] = []

    @broker.subscriber("raw")
    async def handle(msg: Any) -> None:
        got.append(msg)

    async with harness.running(broker) as br:
        await br.publish(body, "raw")
        await harness.until(lambda: len(got) == 1)
    assert got == [expected]


async def test_headers_and_correlation_id_travel_with_the_message(harness: Harness) -> None:
    broker = harness.broker()
    got: list[Any] = []

    @broker.subscriber("q")
    async def handle(msg: str, message: PgMessage) -> None:
        got.append((message.headers["x-tenant"], message.correlation_id, message.attempt))

    async with harness.running(broker) as br:
        await br.publish("m", "q", headers={"x-tenant": "acme"}, correlation_id="cid-1")
        await harness.until(lambda: len(got) == 1)
    assert got == [("acme", "cid-1", 1)]


async def test_return_value_goes_to_the_publisher(harness: Harness) -> None:
    broker = harness.broker()
    got: list[Any] = []

    @broker.subscriber("out")
    async def out(msg: dict[str, int]) -> None:
        got.append(msg)

    @broker.publisher("out")
    @broker.subscriber("in")
    async def handle(ticket: Ticket) -> dict[str, int]:
        return {"id": ticket.id}

    async with harness.running(broker) as br:
        await br.publish(Ticket(id=9), "in")
        await harness.until(lambda: len(got) == 1)
    assert got == [{"id": 9}]


async def test_reply_to_gets_the_return_value(harness: Harness) -> None:
    broker = harness.broker()
    got: list[Any] = []

    @broker.subscriber("replies")
    async def replies(msg: str, message: PgMessage) -> None:
        got.append((msg, message.correlation_id))

    @broker.subscriber("asks")
    async def asks(msg: str) -> str:
        return msg[::-1]

    async with harness.running(broker) as br:
        await br.publish("abc", "asks", reply_to="replies", correlation_id="r-1")
        await harness.until(lambda: len(got) == 1)
    assert got == [("cba", "r-1")]


async def test_request_answers_with_the_handler_result(harness: Harness) -> None:
    broker = harness.broker()

    @broker.subscriber("rpc")
    async def rpc(ticket: Ticket) -> Ticket:
        return Ticket(id=ticket.id, subject="answered")

    async with harness.running(broker) as br:
        answer = await br.request(Ticket(id=3), "rpc", timeout=10)
    assert await answer.decode() == {"id": 3, "subject": "answered"}


async def test_dependencies_and_context_are_injected(harness: Harness) -> None:
    broker = harness.broker()
    got: list[Any] = []

    def subject_length(ticket: Ticket) -> int:
        return len(ticket.subject)

    @broker.subscriber("di")
    async def handle(
        ticket: Ticket,
        logger: Logger,
        length: Annotated[int, Depends(subject_length)],
        queue: Annotated[str, Context("message.job.queue")],
    ) -> None:
        logger.info("ticket %s", ticket.id)
        got.append((length, queue))

    async with harness.running(broker) as br:
        await br.publish(Ticket(id=1, subject="four"), "di")
        await harness.until(lambda: len(got) == 1)
    assert got == [(4, "di")]


async def test_middlewares_see_publish_and_consume(harness: Harness) -> None:
    trail: list[str] = []

    class Trail(BaseMiddleware):
        async def consume_scope(self, call_next: Any, msg: StreamMessage[Any]) -> Any:
            trail.append(f"consume:{await msg.decode()}")
            return await call_next(msg)

        async def publish_scope(self, call_next: Any, cmd: Any) -> Any:
            trail.append(f"publish:{cmd.body}")
            return await call_next(cmd)

    broker = harness.broker(middlewares=[Trail])

    @broker.subscriber("mw")
    async def handle(msg: str) -> None: ...

    async with harness.running(broker) as br:
        await br.publish("x", "mw")
        await harness.until(lambda: len(trail) == 2)
    assert trail == ["publish:x", "consume:x"]


async def test_filters_pick_the_handler_of_a_subscriber(harness: Harness) -> None:
    broker = harness.broker()
    got: list[str] = []
    sub = broker.subscriber("mixed")

    @sub(filter=lambda m: m.content_type == "text/plain")
    async def text(msg: str) -> None:
        got.append(f"text:{msg}")

    @sub
    async def other(msg: Any) -> None:
        got.append(f"other:{msg}")

    async with harness.running(broker) as br:
        await br.publish("a", "mixed")
        await br.publish({"b": 1}, "mixed")
        await harness.until(lambda: len(got) == 2)
    assert sorted(got) == ["other:{'b': 1}", "text:a"]


async def test_routers_prefix_their_queues(harness: Harness) -> None:
    router = PgRouter("sla.")
    got: list[int] = []

    @router.subscriber("check")
    async def check(ticket: Ticket) -> None:
        got.append(ticket.id)

    broker = harness.broker(routers=[router])
    async with harness.running(broker) as br:
        await br.publish(Ticket(id=5), "sla.check")
        await harness.until(lambda: got == [5])


async def test_events_fan_out_to_every_service_once(harness: Harness) -> None:
    got: list[str] = []

    def service(name: str) -> PgBroker:
        broker = harness.broker()

        async def on_created(ticket: Ticket) -> None:
            got.append(f"{name}:{ticket.id}")

        broker.subscriber(f"{name}.inbox", events=["ticket.created"])(on_created)
        return broker

    email, sla = service("email"), service("sla")
    async with harness.running(email, sla) as br:
        ids = await br.publish_event("ticket.created", Ticket(id=1))
        assert len(ids) == 2
        await harness.until(lambda: len(got) == 2)
    assert sorted(got) == ["email:1", "sla:1"]


async def test_handler_exceptions_do_not_stop_the_subscriber(harness: Harness) -> None:
    broker = harness.broker()
    got: list[int] = []

    @broker.subscriber("fragile")
    async def handle(n: int) -> None:
        if n == 0:
            raise ValueError("zero")
        got.append(n)

    async with harness.running(broker) as br:
        try:
            await br.publish(0, "fragile")
        except ValueError:
            assert not harness.real  # in memory the error surfaces at publish
        await br.publish(1, "fragile")
        await harness.until(lambda: got == [1])


# ---------------------------------------------------------------- FastStream's broker testcases
# (faststream tests/brokers/base: consume, publish, requests, router) as PgBroker's contract.


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (Ticket(id=1), "application/json"),
        ({"a": 1}, "application/json"),
        ([1, 2], "application/json"),
        (7, "application/json"),
        ("text", "text/plain"),
        (b"\x01\x02", None),
    ],
)
async def test_content_type_says_how_the_body_was_encoded(
    harness: Harness, body: Any, content_type: str | None
) -> None:
    broker = harness.broker()
    got: list[Any] = []

    @broker.subscriber("ct")
    async def handle(message: PgMessage) -> None:
        got.append(message.content_type)

    async with harness.running(broker) as br:
        await br.publish(body, "ct")
        await harness.until(lambda: len(got) == 1)
    assert got == [content_type]


async def test_documented_json_filter_routes_json_bodies(harness: Harness) -> None:
    broker = harness.broker()
    got: list[str] = []
    sub = broker.subscriber("filtered")

    @sub(filter=lambda m: m.content_type == "application/json")
    async def json_body(msg: dict[str, int]) -> None:
        got.append("json")

    @sub
    async def fallback(msg: Any) -> None:
        got.append("other")

    async with harness.running(broker) as br:
        await br.publish({"a": 1}, "filtered")
        await harness.until(lambda: len(got) == 1)
    assert got == ["json"]


async def test_request_reply_keeps_correlation_id_headers_and_text(harness: Harness) -> None:
    broker = harness.broker()

    @broker.subscriber("rpc-text")
    async def rpc(msg: str) -> Response:
        return Response(msg.upper(), headers={"x-answered-by": "rpc"})

    async with harness.running(broker) as br:
        answer = await br.request("hello", "rpc-text", correlation_id="corr-1", timeout=10)
    assert await answer.decode() == "HELLO"
    assert answer.body == b"HELLO"
    assert answer.correlation_id == "corr-1"
    assert answer.content_type == "text/plain"
    assert answer.headers["x-answered-by"] == "rpc"


async def test_publisher_request_answers_a_plain_string(harness: Harness) -> None:
    broker = harness.broker()
    publisher = broker.publisher("rpc-pub")

    @broker.subscriber("rpc-pub")
    async def rpc(msg: Any) -> str:
        return "Response"

    async with harness.running(broker):
        answer = await publisher.request(None, correlation_id="1", timeout=10)
    assert await answer.decode() == "Response"
    assert answer.correlation_id == "1"


async def test_request_honours_its_timeout(harness: Harness) -> None:
    broker = harness.broker()

    @broker.subscriber("slow-rpc")
    async def rpc(msg: Any) -> str:
        await asyncio.sleep(5)
        return "late"

    async with harness.running(broker) as br:
        with pytest.raises(TimeoutError):
            await br.request("x", "slow-rpc", timeout=0.2)


async def test_subscriber_started_at_run_time_consumes(harness: Harness) -> None:
    broker = harness.broker()
    got: list[str] = []

    async with harness.running(broker) as br:
        sub = br.subscriber("dynamic")

        @sub
        async def handle(msg: str) -> None:
            got.append(msg)

        async with sub:
            await br.publish("hello", "dynamic")
            await harness.until(lambda: got == ["hello"])


async def test_subscriber_start_and_stop_by_hand_at_run_time(harness: Harness) -> None:
    broker = harness.broker()
    got: list[str] = []

    async with harness.running(broker) as br:
        sub = br.subscriber("dynamic-2")

        @sub
        def handle(msg: str) -> None:
            got.append(msg)

        await sub.start()
        await br.publish("hi", "dynamic-2")
        await harness.until(lambda: got == ["hi"])
        await sub.stop()


async def test_router_included_at_run_time_consumes(harness: Harness) -> None:
    broker = harness.broker()
    router = PgRouter("late.")
    got: list[int] = []

    @router.subscriber("check")
    async def check(ticket: Ticket) -> None:
        got.append(ticket.id)

    async with harness.running(broker) as br:
        br.include_router(router)
        for sub in router.subscribers:
            await sub.start()
        await br.publish(Ticket(id=8), "late.check")
        await harness.until(lambda: got == [8])
        for sub in router.subscribers:
            await sub.stop()


async def test_publish_to_a_queue_nobody_declared_fails(harness: Harness) -> None:
    broker = harness.broker()

    @broker.subscriber("known")
    async def handle(msg: Any) -> None: ...

    async with harness.running(broker) as br:
        with pytest.raises(QueueNotFound):
            await br.publish("x", "nobody-declared-this")
        await br.declare_queue("declared-later")
        assert await br.publish("x", "declared-later") is not None


async def test_publisher_to_an_undeclared_queue_fails_like_production(harness: Harness) -> None:
    broker = harness.broker()
    publisher = broker.publisher("undeclared-out")

    async with harness.running(broker):
        with pytest.raises(QueueNotFound):
            await publisher.publish("x")


async def test_id_generator_makes_correlation_ids(harness: Harness) -> None:
    ids = iter(f"gen-{n}" for n in range(100))
    broker = harness.broker(id_generator=lambda: next(ids))
    got: list[str] = []

    @broker.subscriber("ids")
    async def handle(msg: Any, message: PgMessage) -> None:
        got.append(message.correlation_id)

    async with harness.running(broker) as br:
        await br.publish("x", "ids")
        await harness.until(lambda: len(got) == 1)
    assert got == ["gen-0"]


class Reversing:
    """A codec: bodies travel as reversed text (proves the subscriber's codec decodes)."""

    async def decode(self, msg: StreamMessage[Any]) -> Any:
        return msg.body.decode()[::-1]

    async def encode(self, msg: Any, serializer: Any = None) -> tuple[bytes, str | None]:
        return str(msg)[::-1].encode(), "text/x-reversed"


async def test_subscriber_codec_decodes_its_messages(harness: Harness) -> None:
    broker = harness.broker()
    got: list[Any] = []

    @broker.subscriber("codec", codec=Reversing())
    async def handle(msg: Any, message: PgMessage) -> None:
        got.append(msg)

    async with harness.running(broker) as br:
        await br.publish("olleh", "codec")
        await harness.until(lambda: len(got) == 1)
    assert got == ["hello"]


async def test_get_one_conflicts_with_handler(harness: Harness) -> None:
    broker = harness.broker()
    subscriber = broker.subscriber("pull-conflict")

    @subscriber
    async def handle(msg: Any) -> None: ...

    async with harness.running(broker):
        with pytest.raises(AssertionError):
            await subscriber.get_one(timeout=1e-3)
