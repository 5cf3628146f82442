"""Commands: imperative requests sent to one service's queue."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from pydantic import Field, field_validator

from insightdesk.shared.contracts.base import Command

_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


class SendEmail(Command):
    """Render ``template`` with ``context`` and deliver it to ``to`` — at most once per
    ``idempotency_key``, however often the job is retried."""

    queue: ClassVar[str] = "email"
    to: str
    template: str = Field(pattern=r"^[a-z0-9][a-z0-9\-]{0,63}$")
    context: dict[str, Any] = {}
    idempotency_key: str = Field(min_length=1, max_length=200)
    locale: str = "en"

    @field_validator("to")
    @classmethod
    def _address(cls, value: str) -> str:
        if not _EMAIL.fullmatch(value):
            raise ValueError(f"not an e-mail address: {value!r}")
        return value
