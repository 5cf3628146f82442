"""The broker's access logger (FastStream's ``Received``/``Processed`` lines, per queue)."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from insightdesk.shared.queue.broker._faststream import (
    ContextRepo,
    DefaultLoggerStorage,
    LoggerProto,
    get_broker_logger,
    make_logger_state,
)

MESSAGE_ID_WIDTH = 36  # a job id is a UUID


class PgParamsStorage(DefaultLoggerStorage):
    __slots__ = ("_queue_width",)

    def __init__(self) -> None:
        super().__init__()
        self._queue_width = 5
        self.logger_log_level = logging.INFO

    def set_level(self, level: int) -> None:
        self.logger_log_level = level

    def register_subscriber(self, params: dict[str, Any]) -> None:
        self._queue_width = max(self._queue_width, len(params.get("queue", "")))

    def get_logger(self, *, context: ContextRepo) -> LoggerProto:
        if not (logger := self._get_logger_ref()):
            logger = get_broker_logger(
                name="insightdesk.queue",
                default_context={"queue": ""},
                message_id_ln=MESSAGE_ID_WIDTH,
                fmt=(
                    "%(asctime)s %(levelname)-8s - "
                    f"%(queue)-{self._queue_width}s | "
                    f"%(message_id)-{MESSAGE_ID_WIDTH}s - %(message)s"
                ),
                context=context,
                log_level=self.logger_log_level,
            )
            self._logger_ref.add(logger)
        return logger


make_pg_logger_state = partial(make_logger_state, default_storage_cls=PgParamsStorage)
