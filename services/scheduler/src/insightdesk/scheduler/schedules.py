"""Schedules as data: what a schedule is, and how settings change the defaults.

A schedule names a cron expression in an IANA zone and a target: a queue (the job's body is
``{"schedule": name, **data}``, see :class:`~insightdesk.shared.contracts.ScheduledTick`) or an
event, published to every queue subscribed to it. Settings layer overrides on the defaults by
name (:func:`resolve_schedules`): change a field, add a schedule, or ``enabled = false``. Every
problem is reported as a :class:`~insightdesk.shared.errors.ConfigurationError` naming the
schedule and the field, so a bad setting stops the service at start, never at 3 a.m.

Pure: no I/O, no transport.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from insightdesk.shared.errors import ConfigurationError, InvalidArgument
from insightdesk.shared.queue.cron import load_zone, parse_cron
from insightdesk.shared.queue.options import JobOptions, validate_name

RELAY_QUEUE = "scheduler-events"
"""The scheduler's own queue: event schedules fire here, and the scheduler publishes the event."""
SCHEDULE_OPTION_FIELDS = frozenset(
    {
        "priority",
        "retry_limit",
        "retry_delay",
        "retry_backoff",
        "retry_delay_max",
        "expire_in",
        "heartbeat",
        "retention",
        "delete_after",
        "dead_letter",
        "singleton_key",
    }
)
"""Job options a schedule may set (those the engine keeps on a schedule)."""


class ScheduleSpec(BaseModel):
    """One schedule, validated."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    cron: str
    timezone: str = "UTC"
    queue: str | None = None
    event: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)
    missed: Literal["skip", "catch_up"] = "skip"
    grace: float = Field(default=300.0, ge=0)
    """How late a slot may still fire (scheduler restarting, slow tick)."""
    enabled: bool = True
    description: str = ""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        _engine_check(validate_name, value, "schedule")
        return value

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        _engine_check(parse_cron, value)
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        _engine_check(load_zone, value)
        return value

    @field_validator("queue", "event")
    @classmethod
    def _target_name(cls, value: str | None) -> str | None:
        if value is not None:
            _engine_check(validate_name, value)
        return value

    @field_validator("options")
    @classmethod
    def _options(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(value) - SCHEDULE_OPTION_FIELDS)
        if unknown:
            raise ValueError(
                f"unsupported job option(s) {', '.join(unknown)}; "
                f"allowed: {', '.join(sorted(SCHEDULE_OPTION_FIELDS))}"
            )
        try:
            JobOptions(**value)
        except (InvalidArgument, TypeError) as exc:
            raise ValueError(str(exc)) from exc
        return value

    @model_validator(mode="after")
    def _one_target(self) -> ScheduleSpec:
        if (self.queue is None) == (self.event is None):
            raise ValueError("set exactly one target: queue or event")
        return self

    @property
    def target(self) -> str:
        """``queue:<name>`` or ``event:<name>``."""
        return f"queue:{self.queue}" if self.queue is not None else f"event:{self.event}"

    @property
    def engine_queue(self) -> str:
        """The queue the engine fires into (the relay queue for an event)."""
        return self.queue if self.queue is not None else RELAY_QUEUE

    @property
    def engine_data(self) -> dict[str, Any]:
        """The job body the engine stores on the schedule."""
        if self.event is not None:
            return {"schedule": self.name, "event": self.event, "payload": self.data}
        return {**self.data, "schedule": self.name}

    def job_options(self, **extra: Any) -> JobOptions:
        return JobOptions(**self.options, **extra)


def _engine_check(check: Any, value: Any, *args: Any) -> None:
    """Run one of the engine's validators, reporting its message as a field error."""
    try:
        check(value, *args)
    except InvalidArgument as exc:
        raise ValueError(str(exc)) from exc


def resolve_schedules(
    defaults: Sequence[ScheduleSpec], *layers: Mapping[str, Any]
) -> list[ScheduleSpec]:
    """The defaults with each layer of overrides applied in order (later wins), by name.

    A layer maps a schedule name to a table of fields. For an existing name the fields change
    the schedule (setting ``queue`` clears ``event`` and the other way round); a new name adds a
    schedule and must give at least ``cron`` and a target. Raises :class:`ConfigurationError`
    naming the schedule and the field.
    """
    current: dict[str, dict[str, Any]] = {s.name: s.model_dump() for s in defaults}
    for layer in layers:
        for name, fields in layer.items():
            if not isinstance(fields, Mapping):
                raise ConfigurationError(
                    f"schedule {name!r}: expected a table of fields, got {fields!r}"
                )
            merged = dict(current.get(name, {}))
            if "queue" in fields and "event" not in fields:
                merged["event"] = None
            if "event" in fields and "queue" not in fields:
                merged["queue"] = None
            merged.update(fields)
            merged["name"] = name
            current[name] = merged
    resolved = []
    for name, fields in current.items():
        try:
            resolved.append(ScheduleSpec.model_validate(fields))
        except ValidationError as exc:
            raise ConfigurationError(_describe(name, exc)) from None
    return resolved


def _describe(name: str, exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        field = ".".join(str(p) for p in error["loc"]) or "schedule"
        message = str(error["msg"]).removeprefix("Value error, ")
        problems.append(f"field {field!r}: {message}")
    return f"schedule {name!r}: " + "; ".join(problems)
