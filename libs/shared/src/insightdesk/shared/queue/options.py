"""Job and queue options: the one facade service code uses to say how a job should run.

Options are validated when they are built, so a bad value is reported at the call site and never
reaches the database half-applied. Unset fields (``None``) fall back to the queue's defaults,
which live in the database, so every sender of a queue agrees on them.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from insightdesk.shared.errors import InvalidArgument, InvalidQueueName

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-/]{0,99}$")

MAX_DURATION = 10 * 365 * 86400
"""The longest duration any option (and a ``Snooze``/``RetryLater`` delay) may take, in seconds:
ten years. Far beyond any real schedule, far inside PostgreSQL's interval range, so no stored
value can make a later statement (crash recovery, retries, purges) fail with "interval out of
range" for the whole schema."""


def validate_name(name: object, what: str = "queue") -> str:
    """Queue and event names: 1-100 characters of letters, digits, ``_ . - /``."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise InvalidQueueName(
            f"invalid {what} name {name!r}: use 1-100 characters of letters, digits and _ . - /, "
            "starting with a letter or digit"
        )
    return name


def _seconds(
    value: float | timedelta | None, what: str, *, allow_zero: bool = True
) -> float | None:
    """``value`` in seconds, refused unless finite, non-negative (positive without
    ``allow_zero``) and at most :data:`MAX_DURATION`."""
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or not math.isfinite(seconds)
    ):
        raise InvalidArgument(f"{what} must be a finite number of seconds, got {value!r}")
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise InvalidArgument(
            f"{what} must be {'>= 0' if allow_zero else '> 0'} seconds, got {value!r}"
        )
    if seconds > MAX_DURATION:
        raise InvalidArgument(
            f"{what} must be at most {MAX_DURATION} seconds (10 years), got {value!r}"
        )
    return float(seconds)


def _int(value: int | None, what: str, *, minimum: int | None = None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"{what} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise InvalidArgument(f"{what} must be >= {minimum}, got {value!r}")
    if not -(2**31) <= value < 2**31:
        raise InvalidArgument(f"{what} is out of range: {value!r}")
    return value


class QueuePolicy(StrEnum):
    """How many jobs per (queue, singleton key) may exist at once; enforced by unique indexes.

    * ``standard``: no limit.
    * ``short``: at most one *queued* job per key; further sends are rejected until it starts.
    * ``singleton``: at most one *active* job per key; others wait their turn.
    * ``stately``: at most one job per key in each of queued, retrying and active.
    * ``exclusive``: at most one job per key that is queued or active.
    """

    STANDARD = "standard"
    SHORT = "short"
    SINGLETON = "singleton"
    STATELY = "stately"
    EXCLUSIVE = "exclusive"


@dataclass(frozen=True, slots=True, kw_only=True)
class JobOptions:
    """Per-job options; ``None`` means "use the queue's default".

    Every duration (seconds or timedelta) must be finite, non-negative and at most
    :data:`MAX_DURATION` (10 years); anything else is refused with ``InvalidArgument`` naming
    the option, before anything reaches the database.

    ``start_after`` is an aware datetime or a delay (seconds / timedelta) from the database's
    clock. ``singleton_seconds`` throttles to one job per key and time slot; with ``debounce``
    a job that finds its slot taken goes to the next slot instead of being rejected.
    ``id`` makes a send idempotent: a second send with the same id creates nothing.
    """

    id: uuid.UUID | None = None
    priority: int | None = None
    start_after: datetime | float | timedelta | None = None
    singleton_key: str | None = None
    singleton_seconds: float | timedelta | None = None
    debounce: bool = False
    retry_limit: int | None = None
    retry_delay: float | timedelta | None = None
    retry_backoff: bool | None = None
    retry_delay_max: float | timedelta | None = None
    expire_in: float | timedelta | None = None
    heartbeat: float | timedelta | None = None
    retention: float | timedelta | None = None
    delete_after: float | timedelta | None = None
    dead_letter: str | None = None
    headers: dict[str, Any] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        given: object = self.id
        if given is not None and not isinstance(given, uuid.UUID):
            raise InvalidArgument(f"id must be a uuid.UUID, got {given!r}")
        _int(self.priority, "priority")
        _int(self.retry_limit, "retry_limit", minimum=0)
        if isinstance(self.start_after, datetime):
            if self.start_after.tzinfo is None:
                raise InvalidArgument("start_after must be a timezone-aware datetime")
        else:
            _seconds(self.start_after, "start_after delay")
        if self.singleton_key is not None and (
            not isinstance(self.singleton_key, str) or not self.singleton_key
        ):
            raise InvalidArgument(
                f"singleton_key must be a non-empty string, got {self.singleton_key!r}"
            )
        _seconds(self.singleton_seconds, "singleton_seconds", allow_zero=False)
        if self.debounce and self.singleton_seconds is None:
            raise InvalidArgument("debounce needs singleton_seconds")
        _seconds(self.retry_delay, "retry_delay")
        _seconds(self.retry_delay_max, "retry_delay_max")
        _seconds(self.expire_in, "expire_in", allow_zero=False)
        _seconds(self.heartbeat, "heartbeat", allow_zero=False)
        _seconds(self.retention, "retention", allow_zero=False)
        _seconds(self.delete_after, "delete_after")
        if self.dead_letter is not None:
            validate_name(self.dead_letter, "dead-letter queue")
        if self.headers is not None and not isinstance(self.headers, dict):
            raise InvalidArgument("headers must be a dict of JSON values")

    def to_wire(self, *, slot_offset: int = 0) -> dict[str, Any]:
        """The JSON object the insert statement reads its per-job overrides from."""
        wire: dict[str, Any] = {}
        if self.priority is not None:
            wire["priority"] = self.priority
        if isinstance(self.start_after, datetime):
            wire["start_after"] = self.start_after.isoformat()
        elif self.start_after is not None:
            wire["delay"] = _seconds(self.start_after, "start_after delay")
        if self.singleton_key is not None:
            wire["singleton_key"] = self.singleton_key
        if self.singleton_seconds is not None:
            wire["singleton_seconds"] = _seconds(self.singleton_seconds, "singleton_seconds")
            if slot_offset:
                wire["singleton_offset"] = slot_offset
        if self.retry_limit is not None:
            wire["retry_limit"] = self.retry_limit
        if self.retry_backoff is not None:
            wire["retry_backoff"] = self.retry_backoff
        for name in (
            "retry_delay",
            "retry_delay_max",
            "expire_in",
            "heartbeat",
            "retention",
            "delete_after",
        ):
            value = getattr(self, name)
            if value is not None:
                wire[name] = _seconds(value, name)
        if self.dead_letter is not None:
            wire["dead_letter"] = self.dead_letter
        return wire


DEFAULT_JOB_OPTIONS = JobOptions()


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueOptions:
    """A queue's definition: its policy and the defaults its jobs inherit. Durations are
    bounded like :class:`JobOptions`' (at most :data:`MAX_DURATION`)."""

    policy: QueuePolicy = QueuePolicy.STANDARD
    priority: int = 0
    retry_limit: int = 2
    retry_delay: float = 0.0
    retry_backoff: bool = False
    retry_delay_max: float | None = None
    expire_in: float = 15 * 60.0
    heartbeat: float | None = None
    retention: float = 14 * 86400.0
    delete_after: float = 7 * 86400.0
    dead_letter: str | None = None

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "policy", QueuePolicy(self.policy))
        except ValueError as exc:
            allowed = ", ".join(p.value for p in QueuePolicy)
            raise InvalidArgument(
                f"unknown queue policy {self.policy!r}; use one of {allowed}"
            ) from exc
        _int(self.priority, "priority")
        _int(self.retry_limit, "retry_limit", minimum=0)
        for f in fields(self):
            if f.name in {"retry_delay", "retry_delay_max", "delete_after"}:
                object.__setattr__(self, f.name, _seconds(getattr(self, f.name), f.name))
            elif f.name in {"expire_in", "heartbeat", "retention"}:
                object.__setattr__(
                    self, f.name, _seconds(getattr(self, f.name), f.name, allow_zero=False)
                )
        if self.dead_letter is not None:
            validate_name(self.dead_letter, "dead-letter queue")


@dataclass(frozen=True, slots=True)
class QueueDefinition:
    """A stored queue: its name and the options its jobs inherit (what ``get_queue`` returns)."""

    name: str
    options: QueueOptions

    @property
    def keyed(self) -> bool:
        """Whether claims must respect one active job per singleton key (separate claim path)."""
        return self.options.policy in {QueuePolicy.SINGLETON, QueuePolicy.STATELY}

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> QueueDefinition:
        values = {f.name: row[f.name] for f in fields(QueueOptions)}
        try:
            options = QueueOptions(**values)
        except InvalidArgument:
            # stored before durations were bounded: shown as stored, so one such queue does not
            # break listing or working the others (create_queue() with sane values fixes it)
            options = object.__new__(QueueOptions)
            for name, value in values.items():
                object.__setattr__(options, name, value)
            object.__setattr__(options, "policy", QueuePolicy(options.policy))
        return cls(str(row["name"]), options)

    def __getitem__(self, key: str) -> Any:
        """Field access by name, as when definitions were plain dicts (``d["policy"]``)."""
        if key == "name":
            return self.name
        if key not in QueueOptions.__dataclass_fields__:
            raise KeyError(key)
        return getattr(self.options, key)
