"""Turning payloads into JSON text once, with a clear error for anything that is not JSON."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from insightdesk.shared.errors import InvalidArgument

_encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False, ensure_ascii=False).encode


def without_surrogates(text: str) -> str:
    """``text`` with every lone surrogate (which UTF-8, and so PostgreSQL, cannot carry)
    replaced by U+FFFD; well-formed text comes back unchanged."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # a surrogate *pair* becomes its character, a lone one U+FFFD
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def to_json(value: Any, what: str = "payload", *, replace_surrogates: bool = False) -> str:
    """JSON text for ``value``; pydantic models are dumped in JSON mode.

    A lone surrogate (``"\\ud800"``) cannot be stored: it is refused with ``InvalidArgument``,
    or, with ``replace_surrogates`` (handler outputs and error documents, which must not be lost
    over it), replaced by U+FFFD.
    """
    if isinstance(value, BaseModel):
        if replace_surrogates:
            value = value.model_dump(mode="json")
        else:
            try:
                return value.model_dump_json()
            except ValueError as exc:  # pydantic's serialisation error (e.g. a lone surrogate)
                raise InvalidArgument(f"{what} is not JSON-serialisable: {exc}") from exc
    try:
        text = _encode(value)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"{what} is not JSON-serialisable: {exc}") from exc
    if "\\u0000" in text:
        raise InvalidArgument(
            f"{what} contains a NUL character, which PostgreSQL jsonb cannot store"
        )
    if not text.isascii():
        safe = without_surrogates(text)
        if safe is not text:
            if not replace_surrogates:
                raise InvalidArgument(
                    f"{what} contains a lone surrogate (e.g. '\\ud800'), which is not valid "
                    "Unicode text and cannot be stored"
                )
            text = safe
    return text
