"""``subscriber()`` and ``publisher()``, shared by :class:`PgBroker` and :class:`PgRouter`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, cast

from faststream.middlewares import AckPolicy

from insightdesk.shared.errors import InvalidArgument
from insightdesk.shared.queue.broker._faststream import (
    EMPTY,
    CallsCollection,
    CodecProto,
    CustomCallable,
    Registrator,
)
from insightdesk.shared.queue.broker.config import (
    PgBrokerConfig,
    PgPublisherConfig,
    PgPublisherSpecificationConfig,
    PgSubscriberConfig,
    PgSubscriberSpecificationConfig,
)
from insightdesk.shared.queue.broker.message import JobDelivery
from insightdesk.shared.queue.broker.publisher import PgPublisher, PgPublisherSpecification
from insightdesk.shared.queue.broker.subscriber import PgSubscriber, PgSubscriberSpecification
from insightdesk.shared.queue.options import JobOptions, QueueOptions, QueuePolicy, validate_name

if TYPE_CHECKING:
    from fast_depends.dependencies import Dependant


def queue_options(policy: QueueOptions | QueuePolicy | str | None) -> QueueOptions | None:
    """A subscriber's ``policy=``: full queue options, or just a policy name with defaults."""
    if policy is None or isinstance(policy, QueueOptions):
        return policy
    return QueueOptions(policy=QueuePolicy(policy))


class PgRegistrator(Registrator[JobDelivery, PgBrokerConfig]):
    """Declares subscribers and publishers on a broker or a router."""

    def subscriber(  # type: ignore[override]
        self,
        queue: str,
        *,
        events: Iterable[str] = (),
        concurrency: int = 10,
        batch: bool = False,
        max_records: int | None = None,
        prefetch: int | None = None,
        policy: QueueOptions | QueuePolicy | str | None = None,
        poll_interval: float | None = None,
        # FastStream arguments
        ack_policy: AckPolicy = EMPTY,
        no_reply: bool = False,
        dependencies: Sequence[Dependant] = (),
        parser: CustomCallable | None = None,
        decoder: CustomCallable | None = None,
        codec: CodecProto | None = None,
        persistent: bool = True,
        # AsyncAPI
        title: str | None = None,
        description: str | None = None,
        include_in_schema: bool = True,
    ) -> PgSubscriber:
        """Consume ``queue`` with up to ``concurrency`` handlers at once.

        ``events``: event names whose publications this queue receives (subscribed at start).
        ``batch``: the handler takes a list of bodies (``async def h(bodies: list[Model])``),
        the jobs of one claim, settled together; ``concurrency`` then counts handler calls.
        ``max_records``: jobs claimed per round trip (default: ``concurrency``; with ``batch``
        the most bodies per call, default 10).
        ``prefetch``: claimed jobs (with ``batch``: claimed lists) held beyond ``concurrency``
        so the next claim overlaps the running handlers; ``None`` (default) holds up to
        ``concurrency`` ahead only while handlers are quicker than a claim round trip, ``0``
        never (see :class:`insightdesk.shared.queue.worker.Worker`).
        ``codec``: decodes this subscriber's messages (FastStream's ``CodecProto``; it replaces
        ``decoder``, and the broker's codec).
        ``policy``: the queue's definition (:class:`QueueOptions`, or a :class:`QueuePolicy`
        with default options), applied at start; without it the queue is created with
        defaults if it does not exist, and left as it is otherwise.
        """
        if concurrency < 1:
            raise InvalidArgument(f"concurrency must be >= 1, got {concurrency}")
        if not isinstance(batch, bool):
            raise InvalidArgument(
                f"batch is a flag (list handler), got {batch!r}; jobs per claim is max_records"
            )
        if max_records is not None and max_records < 1:
            raise InvalidArgument(f"max_records must be >= 1, got {max_records}")
        event_names = tuple(validate_name(e, "event") for e in events)
        options = queue_options(policy)
        config = cast("PgBrokerConfig", self.config)
        calls: CallsCollection[JobDelivery] = CallsCollection()
        subscriber = PgSubscriber(
            PgSubscriberConfig(
                queue=queue,
                events=event_names,
                queue_options=options,
                concurrency=concurrency,
                max_records=max_records,
                batch=batch,
                prefetch=prefetch,
                poll_interval=poll_interval,
                no_reply=no_reply,
                _outer_config=config,
                _ack_policy=ack_policy,
            ),
            PgSubscriberSpecification(
                config,
                PgSubscriberSpecificationConfig(
                    queue=queue,
                    events=event_names,
                    title_=title,
                    description_=description,
                    include_in_schema=include_in_schema,
                ),
                calls,
            ),
            calls,
        )
        super().subscriber(subscriber, persistent=persistent)
        return subscriber.add_call(
            parser_=parser or self._parser,
            decoder_=decoder or self._decoder,
            dependencies_=dependencies,
            codec_=codec,
        )

    def publisher(  # type: ignore[override]
        self,
        queue: str = "",
        *,
        event: str | None = None,
        options: JobOptions | None = None,
        headers: dict[str, str] | None = None,
        persistent: bool = True,
        # AsyncAPI
        title: str | None = None,
        description: str | None = None,
        schema: Any | None = None,
        include_in_schema: bool = True,
    ) -> PgPublisher:
        """A publisher to ``queue``, or to every queue subscribed to ``event``."""
        if bool(queue) == bool(event):
            raise InvalidArgument("a publisher needs exactly one of queue or event")
        if event is not None:
            validate_name(event, "event")
        config = cast("PgBrokerConfig", self.config)
        publisher = PgPublisher(
            PgPublisherConfig(
                queue=queue,
                event=event,
                options=options,
                headers=headers,
                _outer_config=config,
            ),
            PgPublisherSpecification(
                config,
                PgPublisherSpecificationConfig(
                    queue=queue,
                    event=event,
                    title_=title,
                    description_=description,
                    schema_=schema,
                    include_in_schema=include_in_schema,
                ),
            ),
        )
        super().publisher(publisher, persistent=persistent)
        return publisher
