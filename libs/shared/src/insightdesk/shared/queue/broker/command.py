"""What a publish carries to the producer: body, destination (queue or event), job options and
the caller's transaction; and the :class:`PgResponse` a handler may return to set them."""

from __future__ import annotations

import dataclasses
from typing import Any, Self

from faststream.response import BatchPublishCommand, PublishCommand, PublishType, Response

from insightdesk.shared.queue.broker._faststream import CodecProto
from insightdesk.shared.queue.broker.bodies import CORRELATION_ID, REPLY_TO, to_stored
from insightdesk.shared.queue.connections import Executor
from insightdesk.shared.queue.options import DEFAULT_JOB_OPTIONS, JobOptions


def merge_options(base: JobOptions | None, override: JobOptions | None) -> JobOptions | None:
    """``override``'s set fields over ``base``'s (a publisher's defaults under a call's options)."""
    if base is None or override is None:
        return override if base is None else base
    changes = {
        f.name: getattr(override, f.name)
        for f in dataclasses.fields(override)
        if getattr(override, f.name) != f.default
    }
    if base.headers and override.headers:
        changes["headers"] = {**base.headers, **override.headers}
    return dataclasses.replace(base, **changes)


class PgPublishCommand(BatchPublishCommand):
    """One publish: to ``queue`` (a job) or to ``event`` (a job in every subscribed queue)."""

    def __init__(
        self,
        message: Any,
        /,
        *messages: Any,
        queue: str = "",
        event: str | None = None,
        options: JobOptions | None = None,
        conn: Executor | None = None,
        correlation_id: str | None = None,
        headers: dict[str, Any] | None = None,
        reply_to: str = "",
        timeout: float | None = None,
        _publish_type: PublishType,
    ) -> None:
        super().__init__(
            message,
            *messages,
            destination=queue,
            correlation_id=correlation_id,
            headers=headers,
            reply_to=reply_to,
            _publish_type=_publish_type,
        )
        self.event = event
        self.options = options
        self.conn = conn
        self.timeout = timeout

    @property
    def target(self) -> str:
        """The queue or event name (what telemetry calls the destination)."""
        return self.event or self.destination

    @classmethod
    def from_cmd(cls, cmd: PublishCommand, *, batch: bool = False) -> Self:
        if isinstance(cmd, cls):
            return cmd
        body, extra = cls._parse_bodies(cmd.body, batch=batch)
        return cls(
            body,
            *extra,
            queue=cmd.destination,
            options=getattr(cmd, "options", None),
            correlation_id=cmd.correlation_id,
            headers=cmd.headers,
            reply_to=cmd.reply_to,
            _publish_type=cmd.publish_type,
        )

    def __repr__(self) -> str:
        where = f"event={self.event!r}" if self.event else f"queue={self.destination!r}"
        return (
            f"{self.__class__.__name__}(body={self.body!r}, {where}, options={self.options}, "
            f"headers={self.headers}, correlation_id={self.correlation_id!r})"
        )


class PgResponse(Response):
    """A handler's return value with job options for the publishers that send it on."""

    def __init__(
        self,
        body: Any,
        *,
        options: JobOptions | None = None,
        headers: dict[str, Any] | None = None,
        correlation_id: str | None = None,
    ) -> None:
        super().__init__(body=body, headers=headers, correlation_id=correlation_id)
        self.options = options

    def as_publish_command(self) -> PgPublishCommand:
        return PgPublishCommand(
            self.body,
            options=self.options,
            headers=self.headers,
            correlation_id=self.correlation_id,
            _publish_type=PublishType.PUBLISH,
        )


async def encode_body(body: Any, codec: CodecProto | None) -> tuple[Any, dict[str, str]]:
    """``body`` as stored JSON plus reading headers, through the broker's codec if it has one."""
    if codec is None:
        return to_stored(body)
    raw, content_type = await codec.encode(body)
    data, headers = to_stored(raw)
    if content_type:
        headers["content-type"] = content_type
    return data, headers


def job_headers(cmd: PgPublishCommand, body_headers: dict[str, str]) -> dict[str, Any]:
    headers: dict[str, Any] = {**cmd.headers, **body_headers}
    if cmd.correlation_id:
        headers[CORRELATION_ID] = cmd.correlation_id
    if cmd.reply_to:
        headers[REPLY_TO] = cmd.reply_to
    return headers


def job_options(cmd: PgPublishCommand, headers: dict[str, Any]) -> JobOptions:
    options = cmd.options or DEFAULT_JOB_OPTIONS
    if options.headers:
        headers = {**options.headers, **headers}
    if not headers:
        return options
    return dataclasses.replace(options, headers=headers)
