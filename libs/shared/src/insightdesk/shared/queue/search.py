"""Job search filters and the records search returns (shared by the console API and the CLI).

A :class:`JobFilter` is validated once, here: bad values raise :class:`InvalidArgument` naming
the field, so every caller reports the same clear error.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from insightdesk.shared.errors import InvalidArgument
from insightdesk.shared.queue.jobs import JobInfo, JobState
from insightdesk.shared.queue.options import validate_name

ALL_STATES: tuple[str, ...] = tuple(s.value for s in JobState)
MAX_PAGE = 500


@dataclass(frozen=True, slots=True)
class JobFilter:
    """Which jobs a search or bulk action covers. Empty ``queues`` / ``states`` mean all."""

    queues: tuple[str, ...] = ()
    states: tuple[str, ...] = ()
    singleton_key: str | None = None
    id: uuid.UUID | None = None
    since: datetime | None = None
    until: datetime | None = None
    data: dict[str, Any] | None = None

    @classmethod
    def build(
        cls,
        *,
        queues: Sequence[str] = (),
        states: Sequence[str] = (),
        singleton_key: str | None = None,
        id: str | uuid.UUID | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        data: str | dict[str, Any] | None = None,
    ) -> JobFilter:
        """A filter from loosely typed input (query strings, CLI flags), checked field by field."""
        for q in queues:
            validate_name(q)
        bad = [s for s in states if s not in ALL_STATES]
        if bad:
            raise InvalidArgument(
                f"state: unknown state(s) {', '.join(bad)}; use {', '.join(ALL_STATES)}"
            )
        job_id: uuid.UUID | None = None
        if isinstance(id, uuid.UUID):
            job_id = id
        elif id:
            try:
                job_id = uuid.UUID(id)
            except ValueError:
                raise InvalidArgument(f"id: {id!r} is not a UUID") from None
        for name, value in (("since", since), ("until", until)):
            if value is not None and value.tzinfo is None:
                raise InvalidArgument(f"{name}: give a time zone (e.g. 2026-01-01T00:00:00Z)")
        if since is not None and until is not None and since >= until:
            raise InvalidArgument("since must be before until")
        document: dict[str, Any] | None
        if isinstance(data, str):
            try:
                parsed = json.loads(data) if data.strip() else None
            except json.JSONDecodeError as exc:
                raise InvalidArgument(f"data: not valid JSON ({exc.msg})") from None
            if parsed is not None and not isinstance(parsed, dict):
                raise InvalidArgument('data: give a JSON object, e.g. {"ticket": 42}')
            document = parsed
        else:
            document = data
        return cls(
            queues=tuple(dict.fromkeys(queues)),
            states=tuple(dict.fromkeys(states)),
            singleton_key=singleton_key or None,
            id=job_id,
            since=since,
            until=until,
            data=document,
        )

    def params(self, cursor: int | None, limit: int) -> dict[str, Any]:
        return {
            "queues": list(self.queues) or None,
            "states": list(self.states or ALL_STATES),
            "key": self.singleton_key,
            "id": self.id,
            "since": self.since,
            "until": self.until,
            "data": None if self.data is None else json.dumps(self.data),
            "cursor": cursor,
            "limit": limit,
        }


@dataclass(frozen=True, slots=True)
class JobSummary:
    """One row of a search result."""

    id: uuid.UUID
    seq: int
    name: str
    state: str
    priority: int
    retry_count: int
    retry_limit: int
    singleton_key: str | None
    created_on: datetime
    start_after: datetime
    started_on: datetime | None
    completed_on: datetime | None
    data_preview: str | None


@dataclass(frozen=True, slots=True)
class SearchPage:
    jobs: list[JobSummary]
    next_cursor: int | None


@dataclass(frozen=True, slots=True)
class JobDetail(JobInfo):
    """Everything stored about a job (:class:`JobInfo`), plus its position in the table, every
    failed attempt's error and the trace it was sent in."""

    seq: int
    errors: list[dict[str, Any]] = field(default_factory=list)

    trace_id: str | None = None
    """The W3C trace id of the ``traceparent`` header the job was sent with, if any."""


def trace_id_of(headers: dict[str, Any] | None) -> str | None:
    parent = (headers or {}).get("traceparent")
    if isinstance(parent, str):
        parts = parent.split("-")
        if len(parts) == 4 and len(parts[1]) == 32:
            return parts[1]
    return None


BULK_ACTIONS = ("retry", "cancel", "delete", "redrive", "resume")
