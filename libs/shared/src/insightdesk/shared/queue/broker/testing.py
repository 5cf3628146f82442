"""``TestPgBroker``: run a service's handlers in memory, without a database.

Like FastStream's ``TestRabbitBroker``: inside ``async with TestPgBroker(broker) as br`` every
publish goes straight to the subscribers of its queue (or of its event) in the same task, a
handler's exception surfaces at the ``publish`` call (``AckMessage``/``NackMessage``/
``RejectMessage`` settle the message and do not), and ``handler.mock`` / ``publisher.mock``
record what was received and sent. A batch subscriber (``batch=True``) receives each ``publish``
as a one-element list and a ``publish_batch`` as lists of up to ``max_records`` bodies, as
FastStream's test brokers do. Bodies go through the same JSON encoding as the database
(so a model arrives as a dict, a tuple as a list). Nothing is retried or stored.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Generator, Iterable, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest.mock import MagicMock

from faststream.exceptions import HandlerException, SubscriberNotFound
from faststream.response import Response

from insightdesk.shared.queue.broker._faststream import EnterType, TestBroker, change_producer
from insightdesk.shared.queue.broker.bodies import to_output
from insightdesk.shared.queue.broker.broker import PgBroker
from insightdesk.shared.queue.broker.command import (
    PgPublishCommand,
    encode_body,
    job_headers,
    job_options,
)
from insightdesk.shared.queue.broker.message import JobBatch, JobDelivery
from insightdesk.shared.queue.broker.producer import PgProducer
from insightdesk.shared.queue.broker.publisher import PgPublisher
from insightdesk.shared.queue.broker.subscriber import PgSubscriber
from insightdesk.shared.queue.jobs import Job
from insightdesk.shared.queue.options import JobOptions
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


class TestPgBroker(TestBroker[PgBroker, EnterType], broker=PgBroker):
    """In-memory test double of :class:`PgBroker` (see the module docstring)."""

    def __init__(
        self, *brokers: PgBroker, with_real: bool = False, connect_only: bool | None = None
    ) -> None:
        super().__init__(*brokers, with_real=with_real, connect_only=connect_only)

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
        with change_producer(broker.config.broker_config, FakePgProducer(broker, self.brokers)):
            yield

    async def _fake_connect(self, broker: PgBroker, *args: Any, **kwargs: Any) -> Any:
        return MagicMock(name="QueueClient")


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

    def __init__(self, broker: PgBroker, brokers: Sequence[PgBroker]) -> None:
        super().__init__(broker._parser, broker._decoder, broker.config.broker_codec)
        self.broker = broker
        self.brokers = brokers

    def _targets(self, cmd: PgPublishCommand) -> list[PgSubscriber]:
        if cmd.event is not None:
            return [s for s in _subscribers(self.brokers) if cmd.event in s.events]
        return [s for s in _subscribers(self.brokers) if s.queue == cmd.destination]

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
        return ids[0] if ids else uuid.uuid4()

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
        data, options = await self._stored(cmd, cmd.body)
        for sub in self._targets(cmd):
            response = await _deliver(sub, _delivery(sub, [fake_job(sub.queue, data, options)]))
            output = None if response is None else to_output(response.body)
            if output is not None:
                output = json.loads(to_json(output))
            answer = fake_job(sub.queue, output, JobOptions())
            return JobDelivery(answer)
        raise SubscriberNotFound(f"no subscriber for {cmd.target!r}")
