"""The engine's SQL, loaded once from the ``sql/`` and ``migrations/`` folders.

Each ``sql/*.sql`` file holds named statements (``-- name: fetch``). ``{schema}`` is replaced by
the schema as a quoted identifier through :mod:`psycopg.sql`, never by string formatting, and the
result is cached per schema so the hot path only passes a ready ``str`` to psycopg (which then
prepares it server-side after a few uses).
"""

from __future__ import annotations

import hashlib
import re
from functools import cache
from importlib import resources

from psycopg import sql

from insightdesk.shared.errors import InvalidQueueName

_NAME_MARK = re.compile(r"^--\s*(name|fragment):\s*([a-z_]+)\s*$", re.MULTILINE)
SCHEMA_PATTERN = re.compile(r"^[a-z_][a-z0-9_]{0,40}$")


@cache
def _raw_statements() -> tuple[dict[str, str], dict[str, str]]:
    """Every named statement and every fragment of the ``sql/*.sql`` files, unformatted.

    A fragment (``-- fragment: job_values``) is SQL text that statements include as
    ``{job_values}``, so one column list serves several statements.
    """
    found: dict[str, str] = {}
    fragments: dict[str, str] = {}
    folder = resources.files(__package__).joinpath("sql")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql"):
            continue
        text = entry.read_text(encoding="utf-8")
        marks = list(_NAME_MARK.finditer(text))
        for i, mark in enumerate(marks):
            end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
            kind, name = mark.group(1), mark.group(2)
            target = found if kind == "name" else fragments
            if name in found or name in fragments:
                raise RuntimeError(f"duplicate SQL name {name!r} in {entry.name}")
            body = text[mark.end() : end].strip().rstrip(";")
            target[name] = (
                "\n".join(line for line in body.splitlines() if not line.lstrip().startswith("--"))
                if kind == "fragment"
                else body
            )
    return found, fragments


def validate_schema(schema: str) -> str:
    if not SCHEMA_PATTERN.fullmatch(schema):
        raise InvalidQueueName(
            f"invalid schema name {schema!r}: use lower-case letters, digits and '_' (max 41)"
        )
    return schema


def notify_channel(schema: str) -> str:
    """The base of the schema's LISTEN/NOTIFY channels (see :func:`queue_channel`)."""
    return f"{schema}_jobs"


CHANNEL_MAX = 63
"""PostgreSQL's longest channel name, in bytes."""


def queue_channel(schema: str, queue: str) -> str:
    """The channel on which inserts into ``queue`` (and its resume) are announced; the same name
    as the schema's SQL function ``queue_channel``: ``<schema>_jobs.<queue>``, or the first 16 hex
    digits of the queue name's md5 in place of a name too long for a channel."""
    base = notify_channel(schema)
    channel = f"{base}.{queue}"
    if len(channel.encode()) <= CHANNEL_MAX:
        return channel
    return f"{base}.{hashlib.md5(queue.encode(), usedforsecurity=False).hexdigest()[:16]}"


def _render(text: str, schema: str, fragments: dict[str, sql.Composable] | None = None) -> str:
    composed = sql.SQL(text).format(  # trusted package files
        schema=sql.Identifier(schema),
        channel=sql.Literal(notify_channel(schema)),
        **(fragments or {}),
    )
    return composed.as_string(None)


class Statements:
    """Named statements rendered for one schema, looked up by name: ``statements[name]``."""

    __slots__ = ("_by_name", "schema")

    def __init__(self, schema: str) -> None:
        self.schema = validate_schema(schema)
        raw, raw_fragments = _raw_statements()
        fragments: dict[str, sql.Composable] = {
            name: sql.SQL(_render(text, schema)) for name, text in raw_fragments.items()
        }
        self._by_name = {name: _render(text, schema, fragments) for name, text in raw.items()}

    def __getitem__(self, name: str) -> str:
        return self._by_name[name]


@cache
def statements(schema: str) -> Statements:
    return Statements(schema)
