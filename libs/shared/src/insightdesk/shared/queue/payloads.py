"""Turning payloads into JSON text once, with a clear error for anything that is not JSON."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from insightdesk.shared.errors import InvalidArgument

_encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False, ensure_ascii=False).encode


def to_json(value: Any, what: str = "payload") -> str:
    """JSON text for ``value``; pydantic models are dumped in JSON mode."""
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    try:
        text = _encode(value)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"{what} is not JSON-serialisable: {exc}") from exc
    if "\\u0000" in text:
        raise InvalidArgument(
            f"{what} contains a NUL character, which PostgreSQL jsonb cannot store"
        )
    return text
