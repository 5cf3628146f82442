"""The one door to FastStream's private plug-in surface (``faststream._internal``).

FastStream 0.7 has no public API for writing a broker: a broker fills in the base classes below,
as FastStream's own brokers do. Every private import of the broker package goes through this
module, so an upgrade of FastStream (pinned ``>=0.7.8,<0.8``) is checked in one place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from faststream._internal.basic_types import LoggerProto, SendableMessage
from faststream._internal.broker import BrokerUsecase
from faststream._internal.broker.registrator import Registrator
from faststream._internal.broker.router import ArgsContainer, BrokerRouter, SubscriberRoute
from faststream._internal.configs import (
    BrokerConfig,
    PublisherSpecificationConfig,
    PublisherUsecaseConfig,
    SubscriberSpecificationConfig,
    SubscriberUsecaseConfig,
)
from faststream._internal.constants import EMPTY
from faststream._internal.context.repository import ContextRepo
from faststream._internal.di import FastDependsConfig
from faststream._internal.endpoint.publisher import (
    PublisherProto,
    PublisherSpecification,
    PublisherUsecase,
)
from faststream._internal.endpoint.publisher.fake import FakePublisher
from faststream._internal.endpoint.subscriber import SubscriberSpecification, SubscriberUsecase
from faststream._internal.endpoint.subscriber.call_item import CallsCollection
from faststream._internal.endpoint.utils import ParserComposition, process_msg
from faststream._internal.logger import DefaultLoggerStorage, make_logger_state
from faststream._internal.logger.logging import get_broker_logger
from faststream._internal.parser import CodecProto, DefaultCodec
from faststream._internal.producer import ProducerProto
from faststream._internal.testing.broker import EnterType, TestBroker, change_producer
from faststream._internal.types import (
    AsyncCallable,
    BrokerMiddleware,
    CustomCallable,
    PublisherMiddleware,
)

if TYPE_CHECKING:
    from faststream._internal.fastapi import StreamRouter
    from faststream._internal.fastapi.context import Context as FastAPIContext
else:  # the FastAPI integration needs fastapi (``insightdesk-shared[fastapi]``)
    try:
        from faststream._internal.fastapi import StreamRouter
        from faststream._internal.fastapi.context import Context as FastAPIContext
    except ImportError:
        StreamRouter = FastAPIContext = None

__all__ = [
    "EMPTY",
    "ArgsContainer",
    "AsyncCallable",
    "BrokerConfig",
    "BrokerMiddleware",
    "BrokerRouter",
    "BrokerUsecase",
    "CallsCollection",
    "CodecProto",
    "ContextRepo",
    "CustomCallable",
    "DefaultCodec",
    "DefaultLoggerStorage",
    "EnterType",
    "FakePublisher",
    "FastAPIContext",
    "FastDependsConfig",
    "LoggerProto",
    "ParserComposition",
    "ProducerProto",
    "PublisherMiddleware",
    "PublisherProto",
    "PublisherSpecification",
    "PublisherSpecificationConfig",
    "PublisherUsecase",
    "PublisherUsecaseConfig",
    "Registrator",
    "SendableMessage",
    "StreamRouter",
    "SubscriberRoute",
    "SubscriberSpecification",
    "SubscriberSpecificationConfig",
    "SubscriberUsecase",
    "SubscriberUsecaseConfig",
    "TestBroker",
    "change_producer",
    "get_broker_logger",
    "make_logger_state",
    "process_msg",
]
