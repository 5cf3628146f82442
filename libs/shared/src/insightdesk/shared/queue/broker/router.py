"""Routers: subscribers and publishers declared apart from the broker, included with a prefix."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from faststream.middlewares import AckPolicy

from insightdesk.shared.queue.broker._faststream import (
    EMPTY,
    ArgsContainer,
    BrokerMiddleware,
    BrokerRouter,
    CodecProto,
    CustomCallable,
    SubscriberRoute,
)
from insightdesk.shared.queue.broker.config import PgBrokerConfig
from insightdesk.shared.queue.broker.message import JobDelivery
from insightdesk.shared.queue.broker.registrator import PgRegistrator
from insightdesk.shared.queue.options import JobOptions, QueueOptions, QueuePolicy

if TYPE_CHECKING:
    from fast_depends.dependencies import Dependant


class PgRoutePublisher(ArgsContainer):
    """A publisher declared for a :class:`PgRoute` (``PgRegistrator.publisher``'s arguments)."""

    def __init__(
        self,
        queue: str = "",
        *,
        event: str | None = None,
        options: JobOptions | None = None,
        headers: dict[str, str] | None = None,
        persistent: bool = True,
        title: str | None = None,
        description: str | None = None,
        schema: Any | None = None,
        include_in_schema: bool = True,
    ) -> None:
        super().__init__(
            queue,
            event=event,
            options=options,
            headers=headers,
            persistent=persistent,
            title=title,
            description=description,
            schema=schema,
            include_in_schema=include_in_schema,
        )


class PgRoute(SubscriberRoute):
    """A subscriber declared as a value (``PgRegistrator.subscriber``'s arguments)."""

    def __init__(
        self,
        call: Callable[..., Any] | Callable[..., Awaitable[Any]],
        queue: str,
        *,
        publishers: Iterable[PgRoutePublisher] = (),
        events: Iterable[str] = (),
        concurrency: int = 10,
        batch: bool = False,
        max_records: int | None = None,
        prefetch: int | None = None,
        policy: QueueOptions | QueuePolicy | str | None = None,
        poll_interval: float | None = None,
        ack_policy: AckPolicy = EMPTY,
        no_reply: bool = False,
        dependencies: Sequence[Dependant] = (),
        parser: CustomCallable | None = None,
        decoder: CustomCallable | None = None,
        codec: CodecProto | None = None,
        persistent: bool = True,
        title: str | None = None,
        description: str | None = None,
        include_in_schema: bool = True,
    ) -> None:
        super().__init__(
            call,
            queue,
            publishers=publishers,
            events=events,
            concurrency=concurrency,
            batch=batch,
            max_records=max_records,
            prefetch=prefetch,
            policy=policy,
            poll_interval=poll_interval,
            ack_policy=ack_policy,
            no_reply=no_reply,
            dependencies=dependencies,
            parser=parser,
            decoder=decoder,
            codec=codec,
            persistent=persistent,
            title=title,
            description=description,
            include_in_schema=include_in_schema,
        )


class PgRouter(PgRegistrator, BrokerRouter[JobDelivery, PgBrokerConfig]):
    """A group of subscribers and publishers; ``prefix`` is prepended to their queue names."""

    def __init__(
        self,
        prefix: str = "",
        handlers: Iterable[PgRoute] = (),
        *,
        dependencies: Sequence[Dependant] = (),
        middlewares: Sequence[BrokerMiddleware[Any, Any]] = (),
        routers: Iterable[PgRegistrator] = (),
        parser: CustomCallable | None = None,
        decoder: CustomCallable | None = None,
        include_in_schema: bool | None = None,
        ack_policy: AckPolicy = EMPTY,
    ) -> None:
        super().__init__(
            handlers=handlers,
            config=PgBrokerConfig(
                prefix=prefix,
                ack_policy=ack_policy,
                broker_dependencies=dependencies,
                broker_middlewares=middlewares,
                broker_parser=parser,
                broker_decoder=decoder,
                include_in_schema=include_in_schema,
            ),
            routers=routers,
        )
