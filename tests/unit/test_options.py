"""Job and queue options are validated when built and serialised for the insert statement."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from insightdesk.shared.errors import InvalidArgument, InvalidQueueName
from insightdesk.shared.queue import JobOptions, QueueOptions, QueuePolicy
from insightdesk.shared.queue.options import MAX_DURATION, QueueDefinition, validate_name
from insightdesk.shared.queue.payloads import to_json
from insightdesk.shared.queue.scheduler import slots_to_fire


def test_wire_format_carries_only_what_was_set() -> None:
    at = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert JobOptions().to_wire() == {}
    assert JobOptions(priority=3, start_after=at, retry_delay=timedelta(seconds=90)).to_wire() == {
        "priority": 3,
        "start_after": "2030-01-02T03:04:05+00:00",
        "retry_delay": 90.0,
    }
    assert JobOptions(start_after=2.5).to_wire() == {"delay": 2.5}
    throttled = JobOptions(singleton_key="k", singleton_seconds=60, debounce=True)
    assert throttled.to_wire(slot_offset=1) == {
        "singleton_key": "k",
        "singleton_seconds": 60.0,
        "singleton_offset": 1,
    }


@pytest.mark.parametrize(
    "kwargs",
    [
        {"priority": 1.5},
        {"priority": True},
        {"priority": 2**40},
        {"retry_limit": -1},
        {"start_after": -0.1},
        {"start_after": float("inf")},
        {"start_after": datetime(2030, 1, 1)},  # noqa: DTZ001  # naive on purpose
        {"singleton_key": ""},
        {"singleton_seconds": 0},
        {"debounce": True},
        {"expire_in": 0},
        {"heartbeat": -1},
        {"dead_letter": "no spaces"},
        {"id": "not-a-uuid"},
    ],
)
def test_bad_job_options_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidArgument):
        JobOptions(**kwargs)  # type: ignore[arg-type]


def test_queue_options_validate_policy_and_numbers() -> None:
    assert QueueOptions(policy="short").policy is QueuePolicy.SHORT  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="unknown queue policy"):
        QueueOptions(policy="fifo")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        QueueOptions(retention=0)
    with pytest.raises(InvalidArgument):
        QueueOptions(retry_delay=-5)


@pytest.mark.parametrize("name", ["email", "sla-check", "reports.weekly", "a/b", "x_1"])
def test_valid_names(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize("name", ["", "-lead", "has space", "ünï", "x" * 101, 7])
def test_invalid_names(name: object) -> None:
    with pytest.raises(InvalidQueueName):
        validate_name(name)


def test_payloads_must_be_json() -> None:
    assert to_json({"a": [1, "é"]}) == '{"a":[1,"é"]}'
    for bad in ({"x": {1}}, {"x": float("nan")}, {"x": "\x00"}, {"x": uuid.uuid4()}):
        with pytest.raises(InvalidArgument):
            to_json(bad)


def _at(minute: int) -> datetime:
    return datetime(2030, 1, 1, 12, minute, tzinfo=UTC)


def test_missed_tick_policies() -> None:
    due = [_at(0), _at(1), _at(2), _at(3)]
    now = _at(3) + timedelta(seconds=20)
    assert slots_to_fire(due, now, "skip", 60) == [_at(3)]
    assert slots_to_fire(due, now, "catch_up", 150) == [_at(1), _at(2), _at(3)]
    assert slots_to_fire(due, now + timedelta(minutes=5), "skip", 60) == []
    assert slots_to_fire(due, now + timedelta(minutes=5), "catch_up", 60) == []


JOB_DURATIONS = (
    "start_after",
    "singleton_seconds",
    "retry_delay",
    "retry_delay_max",
    "expire_in",
    "heartbeat",
    "retention",
    "delete_after",
)
QUEUE_DURATIONS = (
    "retry_delay",
    "retry_delay_max",
    "expire_in",
    "heartbeat",
    "retention",
    "delete_after",
)
OUT_OF_RANGE = (1e13, MAX_DURATION + 1, timedelta(days=366 * 10), float("inf"), float("nan"))


@pytest.mark.parametrize("value", OUT_OF_RANGE)
@pytest.mark.parametrize("name", JOB_DURATIONS)
def test_every_job_duration_is_bounded_and_named_in_the_error(name: str, value: object) -> None:
    extra: dict[str, object] = {"singleton_key": "k"} if name == "singleton_seconds" else {}
    with pytest.raises(InvalidArgument, match=name.removesuffix("_after")):
        JobOptions(**{name: value}, **extra)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [*OUT_OF_RANGE, -1.0])
@pytest.mark.parametrize("name", QUEUE_DURATIONS)
def test_every_queue_duration_is_bounded_and_named_in_the_error(name: str, value: object) -> None:
    with pytest.raises(InvalidArgument, match=name):
        QueueOptions(**{name: value})  # type: ignore[arg-type]


def test_the_largest_allowed_duration_is_ten_years() -> None:
    assert MAX_DURATION == 10 * 365 * 86400
    assert JobOptions(start_after=MAX_DURATION, retention=MAX_DURATION).to_wire()["delay"] == (
        MAX_DURATION
    )
    assert QueueOptions(expire_in=MAX_DURATION, delete_after=MAX_DURATION).expire_in == (
        MAX_DURATION
    )


@pytest.mark.parametrize("bad", ["\ud800", "a\udfffb", {"k\udc80": 1}, ["x", {"y": "\ud83d"}]])
def test_a_lone_surrogate_is_refused_with_a_project_error(bad: object) -> None:
    with pytest.raises(InvalidArgument, match="surrogate"):
        to_json(bad)
    with pytest.raises(InvalidArgument, match="surrogate"):
        to_json({"a": bad}, "headers")


def test_a_lone_surrogate_can_be_replaced_where_text_must_not_be_lost() -> None:
    assert to_json({"m": "a\ud800b"}, "output", replace_surrogates=True) == '{"m":"a\ufffdb"}'
    assert to_json("é😀", "output", replace_surrogates=True) == '"é😀"'


def test_a_stored_queue_from_before_the_bounds_still_loads() -> None:
    row = {f: getattr(QueueOptions(), f) for f in QUEUE_DURATIONS}
    row |= {"name": "old", "policy": "stately", "priority": 0, "retry_limit": 2}
    row |= {"retry_backoff": False, "dead_letter": None, "retry_delay": 1e13}
    definition = QueueDefinition.from_row(row)
    assert definition.options.retry_delay == 1e13
    assert definition.options.policy is QueuePolicy.STATELY and definition.keyed
