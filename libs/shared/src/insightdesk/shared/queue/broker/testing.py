"""``TestPgBroker``: run a service's handlers in memory, without a database.

Like FastStream's ``TestRabbitBroker``: inside ``async with TestPgBroker(broker) as br`` every
publish goes straight to the subscribers of its queue (or of its event) in the same task, a
handler's exception surfaces at the ``publish`` call (``AckMessage``/``NackMessage``/
``RejectMessage`` settle the message and do not), and ``handler.mock`` / ``publisher.mock``
record what was received and sent. A batch subscriber (``batch=True``) receives each ``publish``
as a one-element list and a ``publish_batch`` as lists of up to ``max_records`` bodies, as
FastStream's test brokers do. Bodies go through the same JSON encoding as the database
(so a model arrives as a dict, a tuple as a list). Nothing is retried or stored.

It fails where production fails: a publish to a queue that no subscriber of the brokers under
test consumes and nobody declared (``await broker.declare_queue(name)``) raises
:class:`~insightdesk.shared.errors.QueueNotFound`, as the engine's ``send`` does (a publisher's
own stand-in subscriber, which only records ``publisher.mock``, does not make its queue exist).
``request(timeout=...)`` raises ``TimeoutError`` when the handler takes longer. Subscribers can
be started while it runs (``async with sub``, ``await sub.start()``, routers included at run
time): :class:`FakeQueueClient` stands in for the engine client and declares their queues.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Generator, Iterable, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from faststream.exceptions import HandlerException, IncorrectState, SubscriberNotFound
from faststream.response import Response

from insightdesk.shared.errors import QueueNotFound
from insightdesk.shared.queue.broker._faststream import EnterType, TestBroker, change_producer
from insightdesk.shared.queue.broker.bodies import REQUEST, from_reply
from insightdesk.shared.queue.broker.broker import PgBroker
from insightdesk.shared.queue.broker.command import (
    PgPublishCommand,
    encode_body,
    job_headers,
    job_options,
)
from insightdesk.shared.queue.broker.message import JobBatch, JobDelivery, job_output
from insightdesk.shared.queue.broker.producer import REQUEST_TIMEOUT, PgProducer
from insightdesk.shared.queue.broker.publisher import PgPublisher
from insightdesk.shared.queue.broker.subscriber import PgSubscriber
from insightdesk.shared.queue.jobs import Job
from insightdesk.shared.queue.options import JobOptions, QueueOptions, validate_name
from insightdesk.shared.queue.payloads import to_json
from insightdesk.shared.queue.worker import DEFAULT_BATCH_SIZE

__all__ = ["TestPgBroker"]

DEFAULT_RETRY_LIMIT = 2
DEFAULT_EXPIRE_IN = 15 * 60.0


def fake_job(queue: str, data: Any, options: JobOptions) -> Job:
    """A claimed job as the engine would hand it out, from what a publish would have stored."""
    now = datetime.now(UTC)
    expire = options.expire_in
    if isinstance(expire, timedelta):
        expire = expire.total_seconds()
    return Job(
        uuid.uuid4(),
        queue,
        uuid.uuid4(),
        data,
        dict(options.headers or {}),
        0,
        DEFAULT_RETRY_LIMIT if options.retry_limit is None else options.retry_limit,
        DEFAULT_EXPIRE_IN if expire is None else float(expire),
        None,
        options.priority or 0,
        options.singleton_key,
        now,
        now,
    )


class FakeWorker:
    """What a subscriber started under ``TestPgBroker`` holds instead of the engine's worker."""

    async def stop(self, timeout: float | None = None) -> None:
        return None


class FakeQueueClient:
    """The part of the engine client subscribers use to start, kept in memory: the queues
    declared (by subscribers started at run time or ``broker.declare_queue``) and events
    subscribed. Publishes are delivered by :class:`FakePgProducer`, never through a worker."""

    def __init__(self) -> None:
        self.queues: dict[str, QueueOptions] = {}
        self.subscriptions: set[tuple[str, str]] = set()

    async def create_queue(self, name: str, options: QueueOptions | None = None) -> None:
        self.queues[validate_name(name)] = options or QueueOptions()

    async def get_queue(self, name: str) -> dict[str, Any]:
        if name not in self.queues:
            raise QueueNotFound(f"queue {name!r} does not exist")
        return {"name": name}

    async def subscribe(self, event: str, queue: str) -> None:
        if queue not in self.queues:
            raise QueueNotFound(f"queue {queue!r} does not exist")
        self.subscriptions.add((validate_name(event, "event"), queue))

    async def work(self, queue: str, handler: Any, **options: Any) -> FakeWorker:
        return FakeWorker()

    async def claim(self, queue: str, limit: int = 1) -> list[Job]:
        raise IncorrectState(
            "TestPgBroker delivers publishes to handlers only and does not support pulling "
            "(get_one / async iteration): test those against PostgreSQL"
        )


class TestPgBroker(TestBroker[PgBroker, EnterType], broker=PgBroker):
    """In-memory test double of :class:`PgBroker` (see the module docstring)."""

    def __init__(
        self, *brokers: PgBroker, with_real: bool = False, connect_only: bool | None = None
    ) -> None:
        super().__init__(*brokers, with_real=with_real, connect_only=connect_only)
        self.client = FakeQueueClient()

    def create_publisher_fake_subscriber(
        self, broker: PgBroker, publisher: PgPublisher
    ) -> tuple[PgSubscriber, bool]:
        for sub in _subscribers(self.brokers):
            if (publisher.event and publisher.event in sub.events) or (
                not publisher.event and sub.queue == publisher.queue
            ):
                return sub, True
        if publisher.event:
            fake = broker.subscriber(
                f"test.{publisher.event}", events=[publisher.event], persistent=False
            )
        else:
            fake = broker.subscriber(publisher.queue, persistent=False)
        return fake, False

    @contextmanager
    def _patch_producer(self, broker: PgBroker) -> Generator[None, None, None]:
        producer = FakePgProducer(broker, self.brokers, self.client, self._fake_subscribers)
        with change_producer(broker.config.broker_config, producer):
            yield

    @contextmanager
    def _patch_broker(self, broker: PgBroker) -> Generator[None, None, None]:
        config = broker.config.broker_config
        with super()._patch_broker(broker):
            config._client = self.client  # type: ignore[assignment]
            try:
                yield
            finally:
                config._client = None

    async def _fake_connect(self, broker: PgBroker, *args: Any, **kwargs: Any) -> Any:
        return self.client


def _delivery(sub: PgSubscriber, jobs: list[Job]) -> JobDelivery:
    return JobBatch(jobs) if sub.batch else JobDelivery(jobs[0])


async def _deliver(sub: PgSubscriber, delivery: JobDelivery) -> Response | None:
    """Run ``delivery`` through ``sub`` like the real consumer; other errors reach the caller."""
    try:
        return await sub.process_message(delivery)
    except HandlerException:
        return None  # AckMessage/NackMessage/RejectMessage: settled, as in FastStream's tests


def _subscribers(brokers: Iterable[PgBroker]) -> list[PgSubscriber]:
    return [s for b in brokers for s in b.subscribers if isinstance(s, PgSubscriber)]


class FakePgProducer(PgProducer):
    """Delivers publishes to the subscribers of the brokers under test, in memory."""

    def __init__(
        self,
        broker: PgBroker,
        brokers: Sequence[PgBroker],
        client: FakeQueueClient | None = None,
        stand_ins: Sequence[Any] = (),
    ) -> None:
        super().__init__(broker._parser, broker._decoder, broker.config.broker_codec)
        self.broker = broker
        self.brokers = brokers
        self.fake_client = client or FakeQueueClient()
        self.stand_ins = stand_ins

    def _targets(self, cmd: PgPublishCommand) -> list[PgSubscriber]:
        if cmd.event is not None:
            return [s for s in _subscribers(self.brokers) if cmd.event in s.events]
        targets = [s for s in _subscribers(self.brokers) if s.queue == cmd.destination]
        real = [s for s in targets if not any(s is f for f in self.stand_ins)]
        if not real and cmd.destination not in self.fake_client.queues:
            raise QueueNotFound(
                f"queue {cmd.destination!r} does not exist; create it with create_queue()"
            )
        return targets

    async def _stored(self, cmd: PgPublishCommand, body: Any) -> tuple[Any, JobOptions]:
        data, body_headers = await encode_body(body, self.user_codec)
        options = job_options(cmd, job_headers(cmd, body_headers))
        if data is not None:
            data = json.loads(to_json(data))  # what jsonb gives back
        return data, options

    async def publish(self, cmd: PgPublishCommand) -> uuid.UUID | list[uuid.UUID] | None:
        data, options = await self._stored(cmd, cmd.body)
        ids: list[uuid.UUID] = []
        for sub in self._targets(cmd):
            job = fake_job(sub.queue, data, options)
            ids.append(job.id)
            await _deliver(sub, _delivery(sub, [job]))
        if cmd.event is not None:
            return ids
        return ids[0] if ids else uuid.uuid4()  # a declared queue nobody consumes here

    async def publish_batch(self, cmd: PgPublishCommand) -> list[uuid.UUID | None]:
        stored = []
        for body in cmd.batch_bodies:
            single = PgPublishCommand(
                body,
                queue=cmd.destination,
                options=cmd.options,
                headers=cmd.headers,
                correlation_id=cmd.correlation_id,
                _publish_type=cmd.publish_type,
            )
            stored.append(await self._stored(single, body))
        ids: list[uuid.UUID | None] = []
        for sub in self._targets(cmd):
            jobs = [fake_job(sub.queue, data, options) for data, options in stored]
            if not ids:
                ids = [job.id for job in jobs]
            if sub.batch:  # the whole batch at once, in lists of up to max_records
                size = sub.max_records or DEFAULT_BATCH_SIZE
                for start in range(0, len(jobs), size):
                    await _deliver(sub, JobBatch(jobs[start : start + size]))
            else:
                for job in jobs:
                    await _deliver(sub, JobDelivery(job))
        return ids or [uuid.uuid4() for _ in stored]

    async def request(self, cmd: PgPublishCommand) -> JobDelivery:
        cmd.add_headers({REQUEST: "1"})
        data, options = await self._stored(cmd, cmd.body)
        timeout = cmd.timeout or REQUEST_TIMEOUT
        for sub in self._targets(cmd):
            delivery = _delivery(sub, [fake_job(sub.queue, data, options)])
            try:
                async with asyncio.timeout(timeout):
                    response = await _deliver(sub, delivery)
            except TimeoutError:
                raise TimeoutError(
                    f"request to {cmd.target!r} got no answer within {timeout}s"
                ) from None
            output = job_output(delivery, response)
            if output is not None:
                output = json.loads(to_json(output))  # what jsonb gives back
            body, headers = from_reply(output)
            answer = fake_job(sub.queue, body, JobOptions(headers=headers))
            return JobDelivery(answer)
        raise SubscriberNotFound(f"no subscriber for {cmd.target!r}")
