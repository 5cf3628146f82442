"""A subscriber: one queue consumed by the engine's worker, each job run through FastStream.

The engine's :class:`~insightdesk.shared.queue.worker.Worker` stays the consume loop (claims in
batches, ``concurrency`` long-lived runners, batched completions, heartbeats, graceful stop). Its
handler is :meth:`PgSubscriber.consume_job`, which passes the job through FastStream's consume
path (middlewares, parser, dependency injection, return-value publishing) and turns the
handler's decision into the engine's outcome:

* returns (or acks): completed, the return value stored as the job's output;
* raises, with the default ``AckPolicy.NACK_ON_ERROR``: a failed attempt, retried per the
  queue's policy, then dead-lettered (``ACK``: completed anyway; ``REJECT_ON_ERROR``:
  dead-lettered at once);
* ``NackMessage(delay=s)``: a failed attempt retried after ``s`` seconds;
* ``SnoozeMessage(s)``: run again after ``s`` seconds without using an attempt;
* ``RejectMessage(reason=...)``: failed now, no retry, into the dead-letter queue;
* the engine's own ``Snooze`` / ``RetryLater`` / ``Reject``: as the engine defines them.

A batch subscriber (``batch=True``) takes the jobs of one claim as one message whose body is the
list of their bodies (:class:`~insightdesk.shared.queue.broker.message.PgBatchMessage`); its
decision settles every job of the list, and a returned list as long as the batch stores one output
per job.

FastStream's acknowledgement middleware is not in the path: :func:`settle` applies the same
policy after the handler, which keeps every acknowledgement in the worker's batched round trips.

A subscriber without handlers can be pulled from by hand, as in FastStream's other brokers:
``await subscriber.get_one(timeout=5.0)`` claims one ready job (a batch subscriber: up to
``max_records``) and returns it parsed and decoded (or None after ``timeout`` seconds), and
``async for msg in subscriber`` yields such messages until the broker stops. The caller settles
each: ``await msg.ack()`` completes the job, ``await msg.nack(delay=...)`` uses an attempt
(retried after ``delay``, or per the queue's backoff without one; ``count_attempt=False``
snoozes instead) and ``await msg.reject()`` dead-letters it at once. Nothing heartbeats a pulled
job: settle it within its heartbeat period (the queue's ``heartbeat``, default 15 s), or crash
recovery presumes it lost and puts it back in the queue, after which settling it does nothing
(``msg.raw_message.settled`` is then False). Pulling polls the queue (20 ms backing off to
200 ms while it is empty); ``TestPgBroker`` does not support it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from faststream.exceptions import (
    AckMessage,
    HandlerException,
    IncorrectState,
    NackMessage,
    RejectMessage,
    StopConsume,
)
from faststream.message import StreamMessage
from faststream.middlewares import AckPolicy
from faststream.response import Response
from faststream.specification.asyncapi.utils import resolve_payloads
from faststream.specification.schema import Message, Operation, SubscriberSpec

from insightdesk.shared.errors import QueueNotFound
from insightdesk.shared.queue.broker._faststream import (
    CallsCollection,
    FakePublisher,
    PublisherProto,
    SubscriberSpecification,
    SubscriberUsecase,
    process_msg,
)
from insightdesk.shared.queue.broker.command import PgPublishCommand
from insightdesk.shared.queue.broker.config import (
    PgBrokerConfig,
    PgSubscriberConfig,
    PgSubscriberSpecificationConfig,
)
from insightdesk.shared.queue.broker.message import (
    Decision,
    JobBatch,
    JobDelivery,
    PgBatchParser,
    PgMessage,
    PgParser,
    PulledBatch,
    PulledJob,
    job_output,
)
from insightdesk.shared.queue.jobs import Job
from insightdesk.shared.queue.outcomes import HandlerOutcome, Reject, RetryLater, Snooze
from insightdesk.shared.queue.worker import DEFAULT_BATCH_SIZE, Worker

if TYPE_CHECKING:
    from faststream.response import PublishCommand

    from insightdesk.shared.queue.broker.metrics import QueueMetrics
    from insightdesk.shared.queue.client import QueueClient

STOPPING_DELAY = 0.5
"""Seconds a job claimed while its subscriber stops waits before it can be claimed again."""

PULL_BACKOFF = (0.02, 0.2)
"""First and longest pause (seconds) between claims while ``get_one`` waits on an empty queue."""


class HandlersRegistered(IncorrectState, AssertionError):
    """Pulling by hand from a subscriber that has handlers (an AssertionError, as FastStream's
    brokers raise, and an ``IncorrectState``)."""


class Nacked(Exception):  # the handler's verdict, recorded as the job's error
    """The handler nacked the message without raising: a failed attempt."""


def _decide(delivery: JobDelivery, error: Exception, policy: AckPolicy) -> None:
    """What FastStream's acknowledgement middleware would decide for a handler's error."""
    if isinstance(error, AckMessage):
        delivery.ack()
    elif isinstance(error, NackMessage):
        delivery.nack(**error.extra_options)
    elif isinstance(error, RejectMessage):
        delivery.reject(**error.extra_options)
    elif policy is AckPolicy.ACK or policy is AckPolicy.ACK_FIRST:
        delivery.ack()
    elif policy is AckPolicy.REJECT_ON_ERROR:
        delivery.reject()
    else:  # NACK_ON_ERROR (the default), or MANUAL with nothing settled
        delivery.nack()


def settle(
    delivery: JobDelivery,
    response: Response | None,
    error: Exception | None,
    policy: AckPolicy = AckPolicy.NACK_ON_ERROR,
) -> Any:
    """The engine outcome of one delivery: return the output, or raise what the worker maps.

    The handler's own ``message.ack/nack/reject`` call wins; then an ``AckMessage`` /
    ``NackMessage`` / ``RejectMessage`` it raised; then ``policy`` for any other error.
    """
    if isinstance(error, HandlerOutcome):
        raise error  # the handler asked the engine directly
    if error is not None and delivery.decision is None:
        _decide(delivery, error, policy)
    decision = delivery.decision
    if decision is None or decision is Decision.ACK:
        return job_output(delivery, response)
    if isinstance(error, HandlerException):
        error = None  # a verdict, not a failure: the job's error says what was decided
    if decision is Decision.REJECT:
        reason = delivery.reason or (repr(error) if error is not None else "message was rejected")
        raise Reject(reason) from error
    if not delivery.count_attempt:
        raise Snooze(delivery.delay or 0.0) from error
    if delivery.delay is not None:
        reason = repr(error) if error is not None else "message was nacked"
        raise RetryLater(delivery.delay, reason) from error
    if error is not None:
        raise error
    raise Nacked("message was nacked")


class PgSubscriberSpecification(
    SubscriberSpecification[PgBrokerConfig, PgSubscriberSpecificationConfig]
):
    __slots__ = ()

    @property
    def queue(self) -> str:
        return self._outer_config.prefix + self.config.queue

    @property
    def channel_labels(self) -> list[str]:
        return [self.queue]

    @property
    def description(self) -> str | None:
        text = super().description
        if self.config.events:
            events = ", ".join(self.config.events)
            text = f"{text}\n\nEvents: {events}" if text else f"Events: {events}"
        return text

    def get_schema(self) -> dict[str, SubscriberSpec]:
        return {
            self.name: SubscriberSpec(
                address=self.queue,
                description=self.description,
                operation=Operation(
                    message=Message(
                        title=f"{self.name}:Message",
                        payload=resolve_payloads(self.get_payloads()),
                    ),
                    bindings=None,
                ),
                bindings=None,
            )
        }


class PgSubscriber(SubscriberUsecase[JobDelivery]):
    """Consumes one queue (and the events subscribed to it) through the engine's worker."""

    _outer_config: PgBrokerConfig

    def __init__(
        self,
        config: PgSubscriberConfig,
        specification: SubscriberSpecification[Any, Any],
        calls: CallsCollection[JobDelivery],
    ) -> None:
        parser: PgParser | PgBatchParser = PgBatchParser() if config.batch else PgParser()
        config.parser = parser.parse_message
        config.decoder = parser.decode_message
        super().__init__(config, specification, calls)
        self._queue = config.queue
        self.events = config.events
        self.queue_options = config.queue_options
        self.concurrency = config.concurrency
        self.batch = config.batch
        self.max_records = config.max_records
        self.prefetch = config.prefetch
        self._poll_interval = config.poll_interval
        self.worker: Worker | None = None
        self._metrics: QueueMetrics | None = None
        self._stop_task: asyncio.Task[None] | None = None

    @property
    def queue(self) -> str:
        return self._outer_config.prefix + self._queue

    def get_log_context(self, message: StreamMessage[JobDelivery] | None) -> dict[str, str]:
        return {"queue": self.queue, "message_id": getattr(message, "message_id", "")}

    def _make_response_publisher(
        self, message: StreamMessage[JobDelivery]
    ) -> Sequence[PublisherProto]:
        return (PgReplyPublisher(self._outer_config.producer, queue=message.reply_to),)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        await super().start()
        if self.calls:
            client = self._outer_config.client
            await self.declare(client)
            for event in self.events:
                await client.subscribe(event, self.queue)
            self._metrics = self._outer_config.queue_metrics
            self.running = True
            metrics = self._metrics
            try:
                self.worker = await client.work(
                    self.queue,
                    self.consume_batch if self.batch else self.consume_job,
                    on_job_done=None if metrics is None else metrics.record_job,
                    concurrency=self.concurrency,
                    batch_size=self.max_records,
                    batch=self.batch,
                    prefetch=self.prefetch,
                    poll_interval=self._poll_interval or self._outer_config.poll_interval,
                    shutdown_timeout=self._outer_config.graceful_timeout or 30.0,
                )
            except BaseException:
                self.running = False
                raise
        elif self._outer_config.connected:  # pulled by hand: the queue must exist
            client = self._outer_config.client
            await self.declare(client)
            for event in self.events:
                await client.subscribe(event, self.queue)
        self._post_start()

    async def declare(self, client: QueueClient) -> None:
        """Create the queue (and its dead-letter queue) or update it to ``queue_options``."""
        options = self.queue_options
        if options is None:
            try:
                await client.get_queue(self.queue)
            except QueueNotFound:
                await client.create_queue(self.queue)
            return
        if options.dead_letter is not None:
            try:
                await client.get_queue(options.dead_letter)
            except QueueNotFound:
                await client.create_queue(options.dead_letter)
        await client.create_queue(self.queue, options)

    async def stop(self) -> None:
        """Stop claiming; in-flight jobs finish within the graceful timeout, the rest go back."""
        worker, self.worker = self.worker, None
        if worker is not None:
            await worker.stop(self._outer_config.graceful_timeout)
        await super().stop()

    def _stop_soon(self, *, exit_app: bool = False) -> None:
        # A handler asked to stop: stopping waits for in-flight handlers, so not from inside one.
        self.running = False

        async def stop() -> None:
            await self.stop()
            if exit_app and (app := self._outer_config.context.get("app")):
                app.exit()

        if self._stop_task is None or self._stop_task.done():
            self._stop_task = asyncio.create_task(stop(), name=f"stop:{self.queue}")

    # ------------------------------------------------------------------ consuming

    async def consume_job(self, job: Job) -> Any:
        """The engine worker's handler: run ``job`` through FastStream, return or raise."""
        return await self._consume(JobDelivery(job))

    async def consume_batch(self, jobs: list[Job]) -> Any:
        """The engine worker's batch handler: run ``jobs`` through FastStream as one message."""
        return await self._consume(JobBatch(jobs))

    async def _consume(self, delivery: JobDelivery) -> Any:
        if not self.running:
            raise Snooze(STOPPING_DELAY)
        try:
            response = await self.process_message(delivery)
        except StopConsume:
            self._stop_soon()
            raise Snooze(0.0) from None
        except SystemExit:
            self._stop_soon(exit_app=True)
            raise Snooze(0.0) from None
        except Exception as exc:  # noqa: BLE001  # settled below, like the worker would
            return settle(delivery, None, exc, self.ack_policy)
        return settle(delivery, response, None, self.ack_policy)

    # ------------------------------------------------------------------ pulling by hand

    def _pull_client(self, what: str) -> QueueClient:
        if self.calls:  # FastStream's brokers assert this
            raise HandlersRegistered(f"You can't use {what} if subscriber has registered handlers.")
        if not (self.running and self._outer_config.connected):
            raise IncorrectState(
                f"{what} needs a started PgBroker (`await broker.start()`); "
                "TestPgBroker delivers publishes to handlers only and does not support it"
            )
        return self._outer_config.client

    def _stopped(self) -> bool:
        return not self.running

    async def _claim(self, client: QueueClient) -> list[Job]:
        limit = (self.max_records or DEFAULT_BATCH_SIZE) if self.batch else 1
        return await client.claim(self.queue, limit)

    async def _pulled(self, client: QueueClient, jobs: list[Job]) -> PgMessage:
        """Run claimed jobs through the broker middlewares, parser and decoder, like FastStream's
        other brokers do for ``get_one``; the message's ack/nack/reject settle them."""
        delivery: JobDelivery = (
            PulledBatch(jobs, client) if self.batch else PulledJob(jobs[0], client)
        )
        context = self._outer_config.context
        parser, decoder = self._get_parser_and_decoder()
        msg = await process_msg(
            msg=delivery,
            middlewares=(m(delivery, context=context) for m in self._broker_middlewares),
            parser=parser,
            decoder=decoder,
        )
        assert isinstance(msg, PgMessage)
        return msg

    async def get_one(self, *, timeout: float = 5.0) -> PgMessage | None:
        """Claim one ready job (a batch subscriber: up to ``max_records``) and return it parsed
        and decoded, or None when none became ready within ``timeout`` seconds. Settle it with
        ``ack`` / ``nack`` / ``reject`` within its heartbeat period (see the module docstring).
        """
        client = self._pull_client("`get_one` method")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        pause, longest = PULL_BACKOFF
        while not (jobs := await self._claim(client)):
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            await asyncio.sleep(min(pause, remaining))
            pause = min(pause * 2, longest)
        return await self._pulled(client, jobs)

    async def __aiter__(self) -> AsyncIterator[PgMessage]:
        """Yield claimed, decoded jobs as they become ready, until the broker stops."""
        client = self._pull_client("iterator")
        pause, longest = PULL_BACKOFF
        while not self._stopped():
            try:
                jobs = await self._claim(client)
            except Exception:
                if self._stopped():  # the broker stopped (and closed its pool) meanwhile
                    return
                raise
            if not jobs:
                await asyncio.sleep(pause)
                pause = min(pause * 2, longest)
                continue
            pause = PULL_BACKOFF[0]
            yield await self._pulled(client, jobs)


class PgReplyPublisher(FakePublisher):
    """Sends a handler's return value to the queue named by the message's ``reply_to``."""

    __slots__ = ("queue",)

    def __init__(self, producer: Any, queue: str) -> None:
        super().__init__(producer=producer)
        self.queue = queue

    def patch_command(self, cmd: PublishCommand) -> PgPublishCommand:
        real = PgPublishCommand.from_cmd(super().patch_command(cmd))
        real.destination = self.queue
        real.event = None
        return real
