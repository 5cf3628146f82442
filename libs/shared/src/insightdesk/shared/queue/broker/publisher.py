"""A publisher: a named destination (a queue, or an event fanned out to every subscribed queue)
with default job options, usable directly or as a decorator that sends the handler's result."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from faststream.response import PublishCommand, PublishType
from faststream.specification.asyncapi.utils import resolve_payloads
from faststream.specification.schema import Message, Operation, PublisherSpec

from insightdesk.shared.queue.broker._faststream import (
    PublisherMiddleware,
    PublisherSpecification,
    PublisherUsecase,
)
from insightdesk.shared.queue.broker.command import PgPublishCommand, merge_options
from insightdesk.shared.queue.broker.config import (
    PgBrokerConfig,
    PgPublisherConfig,
    PgPublisherSpecificationConfig,
)
from insightdesk.shared.queue.connections import Executor
from insightdesk.shared.queue.options import JobOptions


class PgPublisherSpecification(
    PublisherSpecification[PgBrokerConfig, PgPublisherSpecificationConfig]
):
    __slots__ = ()

    @property
    def target(self) -> str:
        if self.config.event:
            return self.config.event
        return self._outer_config.prefix + self.config.queue

    @property
    def name(self) -> str:
        return self.config.title_ or f"{self.target}:Publisher"

    def get_schema(self) -> dict[str, PublisherSpec]:
        return {
            self.name: PublisherSpec(
                address=self.target,
                description=self.config.description_,
                operation=Operation(
                    message=Message(
                        title=f"{self.name}:Message",
                        payload=resolve_payloads(self.get_payloads(), "Publisher"),
                    ),
                    bindings=None,
                ),
                bindings=None,
            )
        }


class PgPublisher(PublisherUsecase):
    """Publishes to one queue, or (``event=``) to every queue subscribed to an event."""

    _outer_config: PgBrokerConfig

    def __init__(
        self, config: PgPublisherConfig, specification: PublisherSpecification[Any, Any]
    ) -> None:
        super().__init__(config, specification)
        self._queue = config.queue
        self.event = config.event
        self.options = config.options
        self.headers = config.headers or {}

    @property
    def queue(self) -> str:
        return "" if self.event else self._outer_config.prefix + self._queue

    async def publish(
        self,
        message: Any = None,
        queue: str = "",
        *,
        options: JobOptions | None = None,
        headers: dict[str, Any] | None = None,
        correlation_id: str | None = None,
        reply_to: str = "",
        conn: Executor | None = None,
    ) -> uuid.UUID | list[uuid.UUID] | None:
        """Send ``message``; with ``conn`` the job joins that open transaction."""
        cmd = PgPublishCommand(
            message,
            queue=queue or self.queue,
            event=None if queue else self.event,
            options=merge_options(self.options, options),
            conn=conn,
            headers=self.headers | (headers or {}),
            correlation_id=correlation_id or self._outer_config.id_generator(),
            reply_to=reply_to,
            _publish_type=PublishType.PUBLISH,
        )
        result: uuid.UUID | list[uuid.UUID] | None = await self._basic_publish(
            cmd, producer=self._outer_config.producer, _extra_middlewares=()
        )
        return result

    async def _publish(
        self, cmd: PublishCommand, *, _extra_middlewares: Iterable[PublisherMiddleware]
    ) -> None:
        """Publish a handler's return value (the subscriber's flow)."""
        real = PgPublishCommand.from_cmd(cmd)
        real.destination = real.destination or self.queue
        if not real.destination:
            real.event = self.event
        real.options = merge_options(self.options, real.options)
        real.add_headers(self.headers, override=False)
        await self._basic_publish(
            real, producer=self._outer_config.producer, _extra_middlewares=_extra_middlewares
        )

    async def request(
        self,
        message: Any = None,
        queue: str = "",
        *,
        options: JobOptions | None = None,
        headers: dict[str, Any] | None = None,
        correlation_id: str | None = None,
        timeout: float | None = 30.0,
    ) -> Any:
        """Send a job and wait for it to be done; returns a message carrying its output."""
        cmd = PgPublishCommand(
            message,
            queue=queue or self.queue,
            options=merge_options(self.options, options),
            headers=self.headers | (headers or {}),
            correlation_id=correlation_id or self._outer_config.id_generator(),
            timeout=timeout,
            _publish_type=PublishType.REQUEST,
        )
        return await self._basic_request(cmd, producer=self._outer_config.producer)
