"""Handler parameter annotations that inject broker objects (FastStream's ``Context`` idiom)::

async def handle(body: SendEmail, message: PgMessage, logger: Logger) -> None: ...
"""

from typing import Annotated

from faststream import Context, ContextRepo, Logger, NoCast

from insightdesk.shared.queue.broker.broker import PgBroker as _PgBroker
from insightdesk.shared.queue.broker.message import PgBatchMessage as _PgBatchMessage
from insightdesk.shared.queue.broker.message import PgMessage as _PgMessage
from insightdesk.shared.queue.client import QueueClient as _QueueClient

__all__ = [
    "ContextRepo",
    "Logger",
    "NoCast",
    "PgBatchMessage",
    "PgBroker",
    "PgMessage",
    "QueueClient",
]

PgMessage = Annotated[_PgMessage, Context("message")]
"""The message being handled (job id, attempt, headers, ``ack``/``nack``/``reject``)."""

PgBatchMessage = Annotated[_PgBatchMessage, Context("message")]
"""A batch subscriber's message (``jobs``, ``batch_headers``; settling applies to every job)."""

PgBroker = Annotated[_PgBroker, Context("broker")]
QueueClient = Annotated[_QueueClient, Context("broker.client")]
"""The engine client of the broker (stats, operations, sends outside FastStream)."""
