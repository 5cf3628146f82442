"""Configuration records of the broker, its subscribers and publishers (FastStream's shapes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from faststream.exceptions import IncorrectState
from faststream.middlewares import AckPolicy

from insightdesk.shared.queue.broker._faststream import (
    EMPTY,
    BrokerConfig,
    PublisherSpecificationConfig,
    PublisherUsecaseConfig,
    SubscriberSpecificationConfig,
    SubscriberUsecaseConfig,
)
from insightdesk.shared.queue.options import JobOptions, QueueOptions

if TYPE_CHECKING:
    from insightdesk.shared.queue.broker.metrics import QueueMetrics
    from insightdesk.shared.queue.client import QueueClient


@dataclass(kw_only=True)
class PgBrokerConfig(BrokerConfig):
    poll_interval: float = 2.0
    queue_metrics: QueueMetrics | None = None
    _client: QueueClient | None = field(default=None, init=False, repr=False)

    @property
    def client(self) -> QueueClient:
        if self._client is None:
            raise IncorrectState("the broker is not connected: call `await broker.connect()`")
        return self._client

    @property
    def connected(self) -> bool:
        return self._client is not None

    def connect(self, client: QueueClient) -> None:
        self._client = client
        connect = getattr(self.producer, "connect", None)
        if connect is not None:
            connect(client)

    def disconnect(self) -> None:
        self._client = None
        disconnect = getattr(self.producer, "disconnect", None)
        if disconnect is not None:
            disconnect()


@dataclass(kw_only=True)
class PgSubscriberSpecificationConfig(SubscriberSpecificationConfig):
    queue: str
    events: tuple[str, ...] = ()


@dataclass(kw_only=True)
class PgSubscriberConfig(SubscriberUsecaseConfig):
    queue: str
    events: tuple[str, ...] = ()
    queue_options: QueueOptions | None = None
    concurrency: int = 10
    max_records: int | None = None
    batch: bool = False
    prefetch: int | None = None
    poll_interval: float | None = None

    @property
    def auto_ack_disabled(self) -> bool:
        # The subscriber settles every job itself from the policy below (see ``settle``),
        # so FastStream's acknowledgement middleware is left out of the consume path.
        return True

    @property
    def ack_policy(self) -> AckPolicy:
        if self._ack_policy is not EMPTY:
            return self._ack_policy
        outer: AckPolicy = self._outer_config.ack_policy
        if outer is not EMPTY:
            return outer
        # an error is a failed attempt: retried per the queue's policy, then dead-lettered
        return AckPolicy.NACK_ON_ERROR


@dataclass(kw_only=True)
class PgPublisherSpecificationConfig(PublisherSpecificationConfig):
    queue: str
    event: str | None = None


@dataclass(kw_only=True)
class PgPublisherConfig(PublisherUsecaseConfig):
    queue: str
    event: str | None = None
    options: JobOptions | None = None
    headers: dict[str, str] | None = None
