"""The broker's raw message (one delivery of a claimed job), its FastStream message and parser.

FastStream settles a message through ``ack`` / ``nack`` / ``reject``. For a job a handler
consumes they only *record* the decision on the delivery (made by the handler, or by the
subscriber from its ack policy); the subscriber turns it into the engine's outcome once the
handler is done, so the engine's worker keeps doing every acknowledgement in its batched round
trips. A job pulled by hand (``subscriber.get_one()`` / ``async for msg in subscriber``) is a
:class:`PulledJob` / :class:`PulledBatch`: there the call settles it in the engine at once.
"""

from __future__ import annotations

import enum
import logging
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from faststream.exceptions import NackMessage
from faststream.message import StreamMessage, decode_message

from insightdesk.shared.queue.broker.bodies import (
    CORRELATION_ID,
    REPLY_TO,
    REQUEST,
    content_type,
    from_stored,
    reply_output,
    stored_bytes,
    to_output,
)
from insightdesk.shared.queue.jobs import Job
from insightdesk.shared.queue.outcomes import Reject

if TYPE_CHECKING:
    from faststream.response import Response

    from insightdesk.shared.queue.client import QueueClient

log = logging.getLogger(__name__)


class Decision(enum.Enum):
    ACK = "ack"
    NACK = "nack"
    REJECT = "reject"


def _seconds(delay: float | timedelta | None) -> float | None:
    if delay is None:
        return None
    seconds = delay.total_seconds() if isinstance(delay, timedelta) else float(delay)
    if seconds < 0:
        raise ValueError(f"delay must be >= 0 seconds, got {delay!r}")
    return seconds


class JobDelivery:
    """One claimed job handed to a subscriber, and what its handler decided about it."""

    __slots__ = ("count_attempt", "decision", "delay", "job", "reason")

    def __init__(self, job: Job) -> None:
        self.job = job
        self.decision: Decision | None = None
        self.delay: float | None = None
        self.count_attempt = True
        self.reason: str | None = None

    def ack(self) -> None:
        if self.decision is None:
            self.decision = Decision.ACK

    def nack(self, delay: float | timedelta | None = None, *, count_attempt: bool = True) -> None:
        if self.decision is None:
            self.decision = Decision.NACK
            self.delay = _seconds(delay)
            self.count_attempt = count_attempt

    def reject(self, reason: str | None = None) -> None:
        if self.decision is None:
            self.decision = Decision.REJECT
            self.reason = reason

    def __repr__(self) -> str:
        return f"JobDelivery(job={self.job.id}, queue={self.job.queue!r}, decision={self.decision})"


class JobBatch(JobDelivery):
    """The jobs of one claim handed to a batch subscriber; its decision applies to all of them.

    ``job`` is the first job (what logs, telemetry and ``reply_to`` look at).
    """

    __slots__ = ("jobs",)

    def __init__(self, jobs: list[Job]) -> None:
        super().__init__(jobs[0])
        self.jobs = jobs

    def __repr__(self) -> str:
        return (
            f"JobBatch(jobs={len(self.jobs)}, queue={self.job.queue!r}, decision={self.decision})"
        )


class PulledJob(JobDelivery):
    """A job claimed by ``get_one`` / iteration rather than by a worker: settling its message
    settles the job in the engine at once (see :func:`settle_pulled`). ``settled`` is None until
    then, afterwards whether the engine accepted it (False: the lease had expired)."""

    __slots__ = ("client", "settled")

    def __init__(self, job: Job, client: QueueClient) -> None:
        super().__init__(job)
        self.client = client
        self.settled: bool | None = None


class PulledBatch(JobBatch):
    """The jobs of one hand-pulled claim of a batch subscriber (see :class:`PulledJob`)."""

    __slots__ = ("client", "settled")

    def __init__(self, jobs: list[Job], client: QueueClient) -> None:
        super().__init__(jobs)
        self.client = client
        self.settled: bool | None = None


async def settle_pulled(delivery: PulledJob | PulledBatch) -> None:
    """Apply ``delivery``'s decision to its job(s) through the engine: ack completes; nack is a
    failed attempt (retried after its delay, else per the queue's backoff; snoozed without
    an attempt when ``count_attempt=False``); reject fails at once into the dead-letter queue.
    On a database error the decision is forgotten, so the message can be settled again."""
    client = delivery.client
    jobs = delivery.jobs if isinstance(delivery, PulledBatch) else [delivery.job]
    decision = delivery.decision
    try:
        results = []
        for job in jobs:
            if decision is Decision.ACK:
                ok = await client.complete(job.id, job.lease)
            elif decision is Decision.REJECT:
                error = Reject(delivery.reason or "message was rejected")
                ok = await client.fail(job, error, final=True)
            elif not delivery.count_attempt:
                ok = await client.snooze(job, delivery.delay or 0.0)
            else:
                nacked = {"type": "Nacked", "message": "message was nacked"}
                ok = await client.fail(job, nacked, delay=delivery.delay)
            results.append(ok)
    except BaseException:
        delivery.decision = None
        raise
    delivery.settled = all(results)
    if not delivery.settled:
        log.warning(
            "%s of %s on %s: its lease had expired (it was re-queued or settled elsewhere)",
            decision.value if decision else "settle",
            delivery.job.id,
            delivery.job.queue,
        )


def job_output(delivery: JobDelivery, response: Response | None) -> Any:
    """What the engine stores as a handled job's output: the handler's return value; for a
    ``request()`` the reply with its headers and correlation id (see ``bodies.reply_output``)."""
    if response is None:
        return None
    headers = delivery.job.headers
    if isinstance(delivery, JobBatch) or not (headers and headers.get(REQUEST)):
        return to_output(response.body)
    reply_headers = {**response.headers, CORRELATION_ID: response.correlation_id}
    return reply_output(response.body, reply_headers)


_STORED: Any = object()
"""Marks a message whose body still is the job's stored data (bytes are made only on demand)."""


class PgMessage(StreamMessage[JobDelivery]):
    """A job as FastStream sees it. ``message_id`` is the job id.

    * ``ack()``: complete the job (the handler's return value is stored as its output);
    * ``nack(delay=None, count_attempt=True)``: a failed attempt, retried after ``delay`` or
      the queue's retry policy (dead-lettered when no attempt is left); with
      ``count_attempt=False`` the job is snoozed without using an attempt;
    * ``reject(reason=None)``: fail now, without retries, into the dead-letter queue.

    In a handler these record the decision the worker applies when the handler returns; on a
    message pulled with ``get_one`` / iteration they settle the job in the engine at once.
    """

    _body: Any

    @property
    def body(self) -> Any:
        body = self._body
        if body is _STORED:
            job = self.raw_message.job
            body = self._body = stored_bytes(job.data, job.headers)
        return body

    @body.setter
    def body(self, value: Any) -> None:
        self._body = value

    @property
    def body_is_stored(self) -> bool:
        return self._body is _STORED

    @property
    def job(self) -> Job:
        return self.raw_message.job

    @property
    def job_id(self) -> uuid.UUID:
        return self.raw_message.job.id

    @property
    def attempt(self) -> int:
        """1 for the first run, 2 for the first retry, ..."""
        return self.raw_message.job.retry_count + 1

    async def ack(self) -> None:
        if self.committed is None:
            raw = self.raw_message
            raw.ack()
            if isinstance(raw, PulledJob | PulledBatch):
                await settle_pulled(raw)
        await super().ack()

    async def nack(
        self, delay: float | timedelta | None = None, *, count_attempt: bool = True
    ) -> None:
        if self.committed is None:
            raw = self.raw_message
            raw.nack(delay, count_attempt=count_attempt)
            if isinstance(raw, PulledJob | PulledBatch):
                await settle_pulled(raw)
        await super().nack()

    async def reject(self, reason: str | None = None) -> None:
        if self.committed is None:
            raw = self.raw_message
            raw.reject(reason)
            if isinstance(raw, PulledJob | PulledBatch):
                await settle_pulled(raw)
        await super().reject()


class PgBatchMessage(PgMessage):
    """A batch of jobs as FastStream sees it: ``body`` is the list of the jobs' bodies (bytes),
    ``batch_headers`` their headers; ``ack``/``nack``/``reject`` settle every job of the batch.
    ``message_id`` is the first job's id."""

    raw_message: JobBatch

    @property
    def body(self) -> Any:
        body = self._body
        if body is _STORED:
            body = self._body = [stored_bytes(j.data, j.headers) for j in self.raw_message.jobs]
        return body

    @body.setter
    def body(self, value: Any) -> None:
        self._body = value

    @property
    def jobs(self) -> list[Job]:
        return self.raw_message.jobs


class SnoozeMessage(NackMessage):
    """Raise from a handler to run the job again after ``delay`` without using an attempt."""

    def __init__(self, delay: float | timedelta) -> None:
        super().__init__(delay=delay, count_attempt=False)

    def __str__(self) -> str:
        return f"Message was snoozed for {self.extra_options['delay']}"


class PgParser:
    """Turns deliveries into :class:`PgMessage` and decodes their bodies."""

    __slots__ = ()

    async def parse_message(self, delivery: JobDelivery) -> PgMessage:
        job = delivery.job
        headers = job.headers
        message_id = str(job.id)
        if not headers:  # a job sent by the bare engine
            return PgMessage(
                raw_message=delivery,
                body=_STORED,
                content_type=content_type(job.data, headers),
                correlation_id=message_id,
                message_id=message_id,
            )
        return PgMessage(
            raw_message=delivery,
            body=_STORED,
            headers=headers,
            content_type=content_type(job.data, headers),
            correlation_id=headers.get(CORRELATION_ID) or message_id,
            reply_to=headers.get(REPLY_TO) or "",
            message_id=message_id,
        )

    async def decode_message(self, msg: StreamMessage[Any]) -> Any:
        if isinstance(msg, PgMessage) and msg.body_is_stored:
            job = msg.raw_message.job
            return from_stored(job.data, job.headers)
        return decode_message(msg)


class PgBatchParser:
    """Turns a :class:`JobBatch` into a :class:`PgBatchMessage`; its body decodes to a list
    (one element per job), which the handler's ``list[Model]`` annotation validates."""

    __slots__ = ()

    async def parse_message(self, delivery: JobDelivery) -> PgBatchMessage:
        if not isinstance(delivery, JobBatch):  # a single job (e.g. a test publish)
            delivery = JobBatch([delivery.job])
        first = delivery.job
        headers = first.headers or {}
        message_id = str(first.id)
        return PgBatchMessage(
            raw_message=delivery,
            body=_STORED,
            headers=headers,
            batch_headers=[job.headers or {} for job in delivery.jobs],
            content_type=content_type(first.data, headers),
            correlation_id=headers.get(CORRELATION_ID) or message_id,
            reply_to=headers.get(REPLY_TO) or "",
            message_id=message_id,
        )

    async def decode_message(self, msg: StreamMessage[Any]) -> Any:
        if isinstance(msg, PgBatchMessage) and msg.body_is_stored:
            return [from_stored(job.data, job.headers) for job in msg.raw_message.jobs]
        body = msg.body
        if isinstance(body, list):  # FastStream's batch convention: decode each element
            return [decode_message(item) for item in body]
        return decode_message(msg)
