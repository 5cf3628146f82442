"""How a FastStream message body is stored in a job's ``data`` (jsonb) and read back.

Jobs hold JSON, so most bodies are stored as they are: models, dicts, lists, numbers. The few that
are not JSON say so in the job's headers, and the consumer undoes it:

* ``str``: stored as a JSON string with ``content-type: text/plain``;
* ``bytes`` holding JSON: stored parsed (what FastStream's own decoder would return for them);
* other ``bytes``: stored base64 with ``content-encoding: base64`` and handed back as bytes;
* ``None``: stored as SQL NULL and handed back as ``b""``, as FastStream does for an empty body.

A job sent with the bare engine (no headers) is plain JSON, so the broker consumes it unchanged.
A message's ``content_type`` is ``application/json`` for a stored JSON value, as FastStream's own
brokers say for models, dicts, lists and numbers (see :func:`content_type`); it is not stored.

A ``request()`` marks its job (header ``x-request``); the answer's output is then stored as an
envelope ``{"__reply__": {"body": ..., "headers": {...}}}`` so the reply keeps the handler's
headers, the request's ``correlation_id`` and its content type (:func:`reply_output`).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from pydantic import BaseModel
from pydantic_core import to_jsonable_python

CONTENT_TYPE = "content-type"
CONTENT_ENCODING = "content-encoding"
CORRELATION_ID = "correlation_id"
REPLY_TO = "reply_to"
REQUEST = "x-request"
TEXT = "text/plain"
JSON = "application/json"
REPLY_ENVELOPE = "__reply__"
BASE64 = "base64"

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def to_stored(body: Any) -> tuple[Any, dict[str, str]]:
    """The JSON value to store for ``body``, and the headers that tell how to read it back."""
    if body is None or isinstance(body, BaseModel | bool | int | float):
        return body, {}
    if isinstance(body, str):
        return body, {CONTENT_TYPE: TEXT}
    if isinstance(body, bytes | bytearray | memoryview):
        raw = bytes(body)
        try:
            return json.loads(raw), {}
        except ValueError:  # not JSON (or not UTF-8): keep the exact bytes
            return base64.b64encode(raw).decode("ascii"), {CONTENT_ENCODING: BASE64}
    # dicts, lists, dataclasses, datetimes, UUIDs... the way pydantic serialises them
    return to_jsonable_python(body), {}


def from_stored(data: Any, headers: dict[str, Any]) -> Any:
    """The value a handler receives for a job's stored ``data``."""
    if data is None:
        return b""
    if headers and headers.get(CONTENT_ENCODING) == BASE64 and isinstance(data, str):
        try:
            return base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            return data
    return data


def stored_bytes(data: Any, headers: dict[str, Any]) -> bytes:
    """The body as bytes (what size metrics and custom decoders see)."""
    value = from_stored(data, headers)
    if isinstance(value, bytes):
        return value
    if isinstance(value, str) and headers.get(CONTENT_TYPE) == TEXT:
        return value.encode()
    return _dumps(value).encode()


def to_output(body: Any) -> Any:
    """A handler's return value as a JSON value the engine can store as the job's output."""
    if body is None or isinstance(body, BaseModel | str | bool | int | float):
        return body
    if isinstance(body, bytes | bytearray | memoryview):
        return to_stored(body)[0]
    return to_jsonable_python(body, fallback=repr)


def content_type(data: Any, headers: dict[str, Any] | None) -> str | None:
    """The content type of a stored body: its header, else JSON for any stored JSON value
    (None for an empty body and for raw bytes)."""
    if headers:
        if stored := headers.get(CONTENT_TYPE):
            return str(stored)
        if headers.get(CONTENT_ENCODING) == BASE64:
            return None
    return None if data is None else JSON


def reply_output(body: Any, headers: dict[str, Any]) -> Any:
    """The stored output of a requested job: the reply's body with its headers."""
    data, body_headers = to_stored(body)
    if isinstance(data, BaseModel):
        data = data.model_dump(mode="json")
    elif data is not None:
        data = to_jsonable_python(data, fallback=repr)
    reply_headers = {k: v for k, v in headers.items() if v is not None}
    return {REPLY_ENVELOPE: {"body": data, "headers": {**reply_headers, **body_headers}}}


def from_reply(output: Any) -> tuple[Any, dict[str, Any]]:
    """A requested job's stored output as (body data, headers); other outputs as they are."""
    if isinstance(output, dict) and len(output) == 1 and REPLY_ENVELOPE in output:
        envelope = output[REPLY_ENVELOPE]
        if isinstance(envelope, dict):
            headers = envelope.get("headers")
            return envelope.get("body"), headers if isinstance(headers, dict) else {}
    return output, {}
