"""Schedules as data: the defaults, overrides from env and TOML, refusal of bad settings with
the schedule and field named, and the reconciliation plan."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from insightdesk.scheduler.__main__ import SERVICE
from insightdesk.scheduler.defaults import DEFAULT_SCHEDULES
from insightdesk.scheduler.reconcile import engine_row, plan
from insightdesk.scheduler.schedules import RELAY_QUEUE, ScheduleSpec, resolve_schedules
from insightdesk.scheduler.settings import SchedulerSettings
from insightdesk.shared.errors import ConfigurationError


def by_name(specs: list[ScheduleSpec]) -> dict[str, ScheduleSpec]:
    return {s.name: s for s in specs}


def test_the_seed_schedules_are_the_defaults() -> None:
    specs = by_name(SchedulerSettings().resolved_schedules())
    assert {n: (s.cron, s.target) for n, s in specs.items()} == {
        "auto-close": ("0 * * * *", "queue:ticket-actions"),
        "daily-digest": ("0 * * * *", "queue:reports"),
        "weekly-report": ("0 * * * 1", "queue:reports"),
        "cleanup": ("0 3 * * *", "event:maintenance.cleanup_requested"),
        "sla-scan": ("* * * * *", "queue:sla-scan"),
    }
    assert all(s.timezone == "UTC" and s.enabled for s in specs.values())
    cleanup = specs["cleanup"]
    assert cleanup.engine_queue == RELAY_QUEUE
    assert cleanup.engine_data == {
        "schedule": "cleanup",
        "event": "maintenance.cleanup_requested",
        "payload": {},
    }
    assert specs["auto-close"].engine_data == {"action": "auto-close", "schedule": "auto-close"}


def test_env_and_file_change_add_and_disable_schedules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    toml = tmp_path / "schedules.toml"
    toml.write_text(
        '[schedules.auto-close]\ncron = "*/30 * * * *"\n\n'
        "[schedules.weekly-report]\nenabled = false\n\n"
        '[schedules.nightly-export]\ncron = "0 2 * * *"\ntimezone = "Europe/Berlin"\n'
        'queue = "reports-export"\ndata = { kind = "nightly" }\n'
    )
    monkeypatch.setenv("SCHEDULER_SCHEDULES_FILE", str(toml))
    monkeypatch.setenv(
        "SCHEDULER_SCHEDULES",
        '{"auto-close": {"cron": "*/5 * * * *"}, "cleanup": {"queue": "maintenance"}}',
    )
    specs = by_name(SchedulerSettings().resolved_schedules())
    assert specs["auto-close"].cron == "*/5 * * * *"  # env wins over the file
    assert specs["auto-close"].queue == "ticket-actions"  # untouched fields kept
    assert not specs["weekly-report"].enabled
    assert specs["nightly-export"].timezone == "Europe/Berlin"
    assert specs["nightly-export"].engine_data == {"kind": "nightly", "schedule": "nightly-export"}
    assert specs["cleanup"].target == "queue:maintenance"  # a queue replaces the event


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"auto-close": {"cron": "61 * * * *"}}, "schedule 'auto-close': field 'cron'"),
        ({"auto-close": {"timezone": "Mars/Olympus"}}, "schedule 'auto-close': field 'timezone'"),
        ({"new-one": {"queue": "x"}}, "schedule 'new-one': field 'cron'"),
        ({"new-one": {"cron": "* * * * *"}}, "set exactly one target"),
        ({"sla-scan": {"options": {"start_after": 5}}}, "field 'options'"),
        ({"sla-scan": {"grace": -1}}, "schedule 'sla-scan': field 'grace'"),
        ({"sla-scan": {"missed": "sometimes"}}, "schedule 'sla-scan': field 'missed'"),
        ({"sla-scan": {"colour": "blue"}}, "schedule 'sla-scan': field 'colour'"),
        ({"sla-scan": "every minute"}, "schedule 'sla-scan': expected a table"),
        ({"bad name!": {"cron": "* * * * *", "queue": "q"}}, "field 'name'"),
    ],
)
def test_a_malformed_schedule_names_the_schedule_and_field(
    overrides: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        resolve_schedules(DEFAULT_SCHEDULES, overrides)
    assert expected in str(caught.value)


def test_the_service_refuses_to_start_on_a_malformed_schedule(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SCHEDULER_SCHEDULES", '{"auto-close": {"cron": "every hour"}}')
    assert SERVICE.main(["run"]) == 2
    err = capsys.readouterr().err
    assert "schedule 'auto-close'" in err and "field 'cron'" in err


def test_malformed_json_or_toml_refuses_to_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SCHEDULER_SCHEDULES", "{not json")
    assert SERVICE.main(["run"]) == 2
    assert 'field "schedules"' in capsys.readouterr().err
    monkeypatch.delenv("SCHEDULER_SCHEDULES")
    bad = tmp_path / "bad.toml"
    bad.write_text("[schedules.auto-close\n")
    monkeypatch.setenv("SCHEDULER_SCHEDULES_FILE", str(bad))
    assert SERVICE.main(["run"]) == 2
    assert "not valid TOML" in capsys.readouterr().err


def row_of(spec: ScheduleSpec, **changes: Any) -> dict[str, Any]:
    return {**engine_row(spec), "name": spec.name, "last_slot": None, **changes}


def test_the_plan_writes_new_and_changed_retires_removed_and_disabled() -> None:
    specs = by_name(list(DEFAULT_SCHEDULES))
    desired = [
        specs["auto-close"],
        specs["sla-scan"].model_copy(update={"cron": "*/2 * * * *"}),
        specs["cleanup"].model_copy(update={"enabled": False}),
        specs["daily-digest"],
    ]
    existing = {
        "auto-close": row_of(specs["auto-close"]),
        "sla-scan": row_of(specs["sla-scan"]),
        "cleanup": row_of(specs["cleanup"]),
        "old-report": row_of(specs["weekly-report"], name="old-report"),
    }
    result = plan(desired, existing)
    assert [s.name for s in result.write] == ["sla-scan", "daily-digest"]
    assert result.retire == ("cleanup", "old-report")
    assert result.unchanged == ("auto-close",)
