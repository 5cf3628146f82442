"""The producer: FastStream publish commands become engine sends (in the caller's transaction
when the command carries one)."""

from __future__ import annotations

import asyncio
import time
import uuid

from faststream.exceptions import IncorrectState

from insightdesk.shared.errors import QueueError
from insightdesk.shared.queue.batches import NewJob
from insightdesk.shared.queue.broker._faststream import (
    CodecProto,
    CustomCallable,
    DefaultCodec,
    ParserComposition,
    ProducerProto,
)
from insightdesk.shared.queue.broker.bodies import REQUEST, from_reply
from insightdesk.shared.queue.broker.command import (
    PgPublishCommand,
    encode_body,
    job_headers,
    job_options,
)
from insightdesk.shared.queue.broker.message import JobDelivery, PgParser
from insightdesk.shared.queue.client import QueueClient
from insightdesk.shared.queue.jobs import Job, JobInfo, JobState

REQUEST_TIMEOUT = 30.0


def output_delivery(info: JobInfo) -> JobDelivery:
    """A finished job's output as a delivery, so a request's answer parses like any message:
    the reply's body, with the headers and correlation id the handler's reply carried."""
    data, headers = from_reply(info.output)
    job = Job(
        info.id,
        info.name,
        uuid.UUID(int=0),
        data,
        headers,
        info.retry_count,
        info.retry_limit,
        info.expire_in,
        info.heartbeat,
        info.priority,
        info.singleton_key,
        info.created_on,
        info.start_after,
    )
    return JobDelivery(job)


class PgProducer(ProducerProto[PgPublishCommand]):
    __slots__ = ("_client", "_decoder", "_parser", "codec", "user_codec")

    def __init__(
        self,
        parser: CustomCallable | None = None,
        decoder: CustomCallable | None = None,
        codec: CodecProto | None = None,
    ) -> None:
        default = PgParser()
        self._parser = ParserComposition(parser, default.parse_message)
        self._decoder = ParserComposition(decoder, default.decode_message)
        self.user_codec = codec
        self.codec: CodecProto = codec or DefaultCodec()
        self._client: QueueClient | None = None

    def connect(self, client: QueueClient) -> None:
        self._client = client

    def disconnect(self) -> None:
        self._client = None

    @property
    def client(self) -> QueueClient:
        if self._client is None:
            raise IncorrectState("the broker is not connected: call `await broker.connect()`")
        return self._client

    async def publish(self, cmd: PgPublishCommand) -> uuid.UUID | list[uuid.UUID] | None:
        """The new job's id (None when a policy rejected it); for an event, one per queue."""
        data, body_headers = await encode_body(cmd.body, self.user_codec)
        options = job_options(cmd, job_headers(cmd, body_headers))
        if cmd.event is not None:
            return await self.client.publish(cmd.event, data, options, conn=cmd.conn)
        return await self.client.send(cmd.destination, data, options, conn=cmd.conn)

    async def publish_batch(self, cmd: PgPublishCommand) -> list[uuid.UUID | None]:
        items = []
        for body in cmd.batch_bodies:
            data, body_headers = await encode_body(body, self.user_codec)
            items.append(NewJob(data, job_options(cmd, job_headers(cmd, body_headers))))
        return await self.client.send_many(cmd.destination, items, conn=cmd.conn)

    async def request(self, cmd: PgPublishCommand) -> JobDelivery:
        """Send a job and wait until it is done; the answer is the job's stored output."""
        if cmd.event is not None or cmd.conn is not None:
            raise QueueError("request() sends one job on its own connection; no event or conn")
        cmd.add_headers({REQUEST: "1"})
        job_id = await self.publish(cmd)
        if not isinstance(job_id, uuid.UUID):
            raise QueueError(f"request to {cmd.destination!r} was rejected by the queue policy")
        timeout = cmd.timeout or REQUEST_TIMEOUT
        deadline = time.monotonic() + timeout
        pause = 0.005
        while True:
            info = await self.client.get_job(job_id)
            if info.state == JobState.COMPLETED:
                return output_delivery(info)
            if info.state in {JobState.FAILED, JobState.CANCELLED}:
                raise QueueError(f"requested job {job_id} ended {info.state.value}: {info.output}")
            if time.monotonic() >= deadline:
                raise TimeoutError(f"requested job {job_id} was not done within {timeout}s")
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.2)

    def __repr__(self) -> str:
        return f"PgProducer(connected={self._client is not None})"
