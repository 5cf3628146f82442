"""The engine's SQL, loaded once from the ``sql/`` and ``migrations/`` folders.

Each ``sql/*.sql`` file holds named statements (``-- name: fetch``). ``{schema}`` is replaced by
the schema as a quoted identifier through :mod:`psycopg.sql`, never by string formatting, and the
result is cached per schema so the hot path only passes a ready ``str`` to psycopg (which then
prepares it server-side after a few uses).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from psycopg import sql

from insightdesk.shared.errors import InvalidQueueName

_NAME_MARK = re.compile(r"^--\s*name:\s*([a-z_]+)\s*$", re.MULTILINE)
SCHEMA_PATTERN = re.compile(r"^[a-z_][a-z0-9_]{0,40}$")


@cache
def _raw_statements() -> dict[str, str]:
    """Every named statement of every ``sql/*.sql`` file, unformatted."""
    found: dict[str, str] = {}
    folder = resources.files(__package__).joinpath("sql")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql"):
            continue
        text = entry.read_text(encoding="utf-8")
        marks = list(_NAME_MARK.finditer(text))
        for i, mark in enumerate(marks):
            end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
            name = mark.group(1)
            if name in found:
                raise RuntimeError(f"duplicate SQL statement name {name!r} in {entry.name}")
            found[name] = text[mark.end() : end].strip().rstrip(";")
    return found


def validate_schema(schema: str) -> str:
    if not SCHEMA_PATTERN.fullmatch(schema):
        raise InvalidQueueName(
            f"invalid schema name {schema!r}: use lower-case letters, digits and '_' (max 41)"
        )
    return schema


def notify_channel(schema: str) -> str:
    """The LISTEN/NOTIFY channel on which inserts into ``schema`` announce their queue."""
    return f"{schema}_jobs"


def _render(text: str, schema: str) -> str:
    composed = sql.SQL(text).format(  # trusted package files
        schema=sql.Identifier(schema), channel=sql.Literal(notify_channel(schema))
    )
    return composed.as_string(None)


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    text: str


@cache
def migrations(schema: str) -> tuple[Migration, ...]:
    """The schema migrations in version order, rendered for ``schema``."""
    folder = resources.files(__package__).joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            found.append(
                Migration(version, entry.name, _render(entry.read_text(encoding="utf-8"), schema))
            )
    found.sort(key=lambda m: m.version)
    return tuple(found)


class Statements:
    """Named statements rendered for one schema; attribute access is a dict lookup."""

    __slots__ = ("_by_name", "schema")

    def __init__(self, schema: str) -> None:
        self.schema = validate_schema(schema)
        self._by_name = {name: _render(text, schema) for name, text in _raw_statements().items()}

    def __getitem__(self, name: str) -> str:
        return self._by_name[name]


@cache
def statements(schema: str) -> Statements:
    return Statements(schema)
