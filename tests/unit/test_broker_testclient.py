"""TestPgBroker: service handlers run in memory, the way FastStream's test brokers run them."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import pytest
from faststream import BaseMiddleware, Context, Depends, Logger, StreamMessage
from pydantic import BaseModel, ValidationError

from insightdesk.shared.errors import InvalidArgument, QueueNotFound
from insightdesk.shared.queue.broker import (
    JobOptions,
    PgBroker,
    PgMessage,
    PgRoute,
    PgRoutePublisher,
    PgRouter,
    QueueOptions,
    TestPgBroker,
)


class SendEmail(BaseModel):
    to: str
    template: str
    context: dict[str, Any] = {}


def make_broker(**kwargs: Any) -> PgBroker:
    return PgBroker("postgresql://unused/db", logger=None, **kwargs)


async def test_handler_mock_records_the_decoded_body() -> None:
    broker = make_broker()

    @broker.subscriber("email", policy=QueueOptions(retry_limit=5))
    async def send(command: SendEmail) -> None: ...

    async with TestPgBroker(broker) as br:
        await br.publish(SendEmail(to="a@example.com", template="welcome"), "email")
        send.mock.assert_called_once_with(
            {"to": "a@example.com", "template": "welcome", "context": {}}
        )


async def test_publish_needs_no_database_and_returns_a_job_id() -> None:
    broker = make_broker()

    @broker.subscriber("q")
    async def handle(body: int) -> None: ...

    async with TestPgBroker(broker) as br:
        job_id = await br.publish(1, "q", options=JobOptions(priority=3))
        assert job_id is not None
        assert await br.ping(1) is True
        handle.mock.assert_called_once_with(1)


async def test_publish_to_a_queue_without_subscriber_or_declaration_fails() -> None:
    broker = make_broker()

    @broker.subscriber("q")
    async def handle(body: int) -> None: ...

    async with TestPgBroker(broker) as br:
        with pytest.raises(QueueNotFound, match="nobody"):
            await br.publish(1, "nobody")
        with pytest.raises(QueueNotFound):
            await br.publish_batch(1, 2, queue="nobody")
        await br.declare_queue("nobody")
        assert isinstance(await br.publish(1, "nobody"), uuid.UUID)


async def test_publisher_mock_records_return_values() -> None:
    broker = make_broker()
    out = broker.publisher("digest")

    @out
    @broker.subscriber("build")
    async def build(org: int) -> dict[str, int]:
        return {"org": org, "tickets": 3}

    async with TestPgBroker(broker) as br:
        with pytest.raises(QueueNotFound, match="digest"):  # as the job would fail for real
            await br.publish(41, "build")
        await br.declare_queue("digest")
        out.mock.reset_mock()
        await br.publish(42, "build")
        out.mock.assert_called_once_with({"org": 42, "tickets": 3})


async def test_a_handler_error_surfaces_at_publish() -> None:
    broker = make_broker()

    @broker.subscriber("email")
    async def send(command: SendEmail) -> None:
        raise RuntimeError("smtp down")

    async with TestPgBroker(broker) as br:
        with pytest.raises(RuntimeError, match="smtp down"):
            await br.publish(SendEmail(to="x@example.com", template="t"), "email")


async def test_a_bad_body_fails_validation() -> None:
    broker = make_broker()

    @broker.subscriber("email")
    async def send(command: SendEmail) -> None: ...

    async with TestPgBroker(broker) as br:
        with pytest.raises(ValidationError):
            await br.publish({"to": 1}, "email")


async def test_context_depends_and_headers_are_injected() -> None:
    broker = make_broker()
    got: list[Any] = []

    def tenant(message: PgMessage) -> str:
        return str(message.headers["x-tenant"])

    @broker.subscriber("q")
    async def handle(
        body: str,
        logger: Logger,
        message: PgMessage,
        the_tenant: Annotated[str, Depends(tenant)],
        cid: Annotated[str, Context("message.correlation_id")],
    ) -> None:
        got.append((body, the_tenant, cid, message.attempt, message.job.priority))

    async with TestPgBroker(broker) as br:
        await br.publish(
            "hi",
            "q",
            headers={"x-tenant": "acme"},
            correlation_id="c-9",
            options=JobOptions(priority=4),
        )
    assert got == [("hi", "acme", "c-9", 1, 4)]


async def test_events_reach_every_subscribed_queue() -> None:
    email, sla = make_broker(), make_broker()
    seen: list[str] = []

    @email.subscriber("email.events", events=["ticket.created"])
    async def on_email(ticket: int) -> None:
        seen.append(f"email:{ticket}")

    @sla.subscriber("sla.events", events=["ticket.created", "ticket.closed"])
    async def on_sla(ticket: int) -> None:
        seen.append(f"sla:{ticket}")

    async with TestPgBroker(email, sla) as (br, _):
        ids = await br.publish_event("ticket.created", 5)
        assert len(ids) == 2
        await br.publish_event("ticket.closed", 6)
    assert seen == ["email:5", "sla:5", "sla:6"]


async def test_middlewares_run_around_consume_and_publish() -> None:
    trail: list[str] = []

    class Trail(BaseMiddleware):
        async def consume_scope(self, call_next: Any, msg: StreamMessage[Any]) -> Any:
            trail.append("consume")
            return await call_next(msg)

        async def publish_scope(self, call_next: Any, cmd: Any) -> Any:
            trail.append(f"publish:{cmd.destination}")
            return await call_next(cmd)

    broker = make_broker(middlewares=[Trail])

    @broker.subscriber("q")
    async def handle(body: int) -> None: ...

    async with TestPgBroker(broker) as br:
        await br.publish(1, "q")
    assert trail == ["publish:q", "consume"]


async def test_router_routes_and_prefix() -> None:
    async def square(n: int) -> int:
        return n * n

    router = PgRouter(
        "math.", handlers=[PgRoute(square, "square", publishers=[PgRoutePublisher("out")])]
    )
    results: list[int] = []

    @router.subscriber("out")
    async def out(n: int) -> None:
        results.append(n)

    broker = make_broker(routers=[router])
    async with TestPgBroker(broker) as br:
        await br.publish(3, "math.square")
    assert results == [9]


async def test_request_returns_the_handler_result() -> None:
    broker = make_broker()

    @broker.subscriber("rpc")
    async def rpc(n: int) -> dict[str, int]:
        return {"n": n + 1}

    async with TestPgBroker(broker) as br:
        answer = await br.request(1, "rpc")
        assert await answer.decode() == {"n": 2}


async def test_batch_publish_delivers_each_message() -> None:
    broker = make_broker()
    seen: list[int] = []

    @broker.subscriber("q")
    async def handle(n: int) -> None:
        seen.append(n)

    async with TestPgBroker(broker) as br:
        ids = await br.publish_batch(1, 2, 3, queue="q")
    assert seen == [1, 2, 3] and len(ids) == 3


async def test_subscribers_are_not_running_after_the_test_broker() -> None:
    broker = make_broker()

    @broker.subscriber("q")
    async def handle(n: int) -> None: ...

    async with TestPgBroker(broker):
        assert all(s.running for s in broker.subscribers)
    assert not any(s.running for s in broker.subscribers)


async def test_batch_subscriber_mock_is_called_with_a_list() -> None:
    broker = make_broker()
    received: list[list[SendEmail]] = []

    @broker.subscriber("bulk-email", batch=True, max_records=2)
    async def send(commands: list[SendEmail]) -> None:
        received.append(commands)

    async with TestPgBroker(broker) as br:
        await br.publish(SendEmail(to="a@example.com", template="welcome"), "bulk-email")
        send.mock.assert_called_once_with(
            [{"to": "a@example.com", "template": "welcome", "context": {}}]
        )
        send.mock.reset_mock()
        await br.publish_batch(
            *(SendEmail(to=f"{n}@example.com", template="t") for n in range(3)),
            queue="bulk-email",
        )
        assert [len(call.args[0]) for call in send.mock.call_args_list] == [2, 1]
    assert received[0] == [SendEmail(to="a@example.com", template="welcome")]
    assert [c.to for batch in received[1:] for c in batch] == [f"{n}@example.com" for n in range(3)]


async def test_batch_subscriber_error_surfaces_and_validation_is_per_element() -> None:
    broker = make_broker()

    @broker.subscriber("bulk-strict", batch=True)
    async def handle(commands: list[SendEmail]) -> None:
        raise RuntimeError("boom")

    async with TestPgBroker(broker) as br:
        with pytest.raises(ValidationError):
            await br.publish({"to": "a@example.com"}, "bulk-strict")
        with pytest.raises(RuntimeError, match="boom"):
            await br.publish(SendEmail(to="a@example.com", template="t"), "bulk-strict")


def test_batch_must_be_a_flag() -> None:
    broker = make_broker()
    with pytest.raises(InvalidArgument, match="max_records"):
        broker.subscriber("q", batch=5)  # type: ignore[arg-type]
