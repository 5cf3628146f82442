"""One conformance suite, run twice: against real PostgreSQL and against ``TestPgBroker``.

Modelled on FastStream's broker test cases (consume, publish, reply, router, middlewares,
dependency injection), so a service unit-tested in memory behaves the same in production.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

import pytest
from faststream import BaseMiddleware, Context, Depends, Logger, StreamMessage
from pydantic import BaseModel

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
