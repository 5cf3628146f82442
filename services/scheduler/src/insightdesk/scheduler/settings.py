"""Settings of the scheduler service (``SCHEDULER_*`` environment variables), validated once at
start-up: a malformed schedule refuses to start with a message naming the schedule and field.

Schedules: the defaults (:mod:`insightdesk.scheduler.defaults`), then the TOML file named by
``SCHEDULER_SCHEDULES_FILE``, then ``SCHEDULER_SCHEDULES`` (JSON), later layers winning::

    # schedules.toml
    [schedules.auto-close]
    cron = "*/30 * * * *"          # change a default

    [schedules.weekly-report]
    enabled = false                # disable one

    [schedules.nightly-export]     # add one
    cron = "0 2 * * *"
    timezone = "Europe/Berlin"
    queue = "reports-export"
    data = { kind = "nightly" }

    SCHEDULER_SCHEDULES='{"sla-scan": {"cron": "*/2 * * * *"}}'
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from insightdesk.scheduler.defaults import DEFAULT_SCHEDULES
from insightdesk.scheduler.schedules import ScheduleSpec, resolve_schedules
from insightdesk.shared.errors import ConfigurationError
from insightdesk.shared.settings import ServiceSettings


class SchedulerSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SCHEDULER_", extra="ignore", frozen=True)

    http_port: int = Field(default=8002, ge=0, le=65535)
    operator_token: SecretStr | None = None
    """Bearer token of ``POST /schedules/{name}/run``; without one that route always answers
    401. Placeholders are refused outside development."""
    schedules: dict[str, Any] = Field(default_factory=dict)
    """Overrides by schedule name (JSON in ``SCHEDULER_SCHEDULES``)."""
    schedules_file: Path | None = None
    """A TOML file with ``[schedules.<name>]`` tables of overrides."""
    tick_interval: float = Field(default=1.0, gt=0)
    """How often each replica looks for due slots."""
    reconcile_interval: float = Field(default=15.0, gt=0)
    """How often the schedule table is compared with the settings again (a queue that appears
    later starts its schedules; a schedule deleted with its queue comes back)."""
    relay_interval: float = Field(default=1.0, gt=0)
    """How often fired event schedules are published."""
    maintenance_interval: float = Field(default=300.0, gt=0)
    recover_interval: float = Field(default=5.0, gt=0)
    db_pool_size: int = Field(default=4, ge=2, le=50)

    @model_validator(mode="after")
    def _schedules_are_valid(self) -> SchedulerSettings:
        if self.operator_token is not None:
            self.check_secret("SCHEDULER_OPERATOR_TOKEN", self.operator_token)
        self.resolved_schedules()
        return self

    def resolved_schedules(self) -> list[ScheduleSpec]:
        """Defaults, then the file, then the environment (raises ConfigurationError)."""
        return resolve_schedules(DEFAULT_SCHEDULES, self._file_overrides(), self.schedules)

    def _file_overrides(self) -> dict[str, Any]:
        if self.schedules_file is None:
            return {}
        try:
            document = tomllib.loads(self.schedules_file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigurationError(
                f"SCHEDULER_SCHEDULES_FILE {self.schedules_file}: cannot read it: {exc}"
            ) from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(
                f"SCHEDULER_SCHEDULES_FILE {self.schedules_file}: not valid TOML: {exc}"
            ) from exc
        unknown = sorted(set(document) - {"schedules"})
        if unknown:
            raise ConfigurationError(
                f"SCHEDULER_SCHEDULES_FILE {self.schedules_file}: unknown table(s) "
                f"{', '.join(unknown)}; put schedules under [schedules.<name>]"
            )
        tables = document.get("schedules", {})
        if not isinstance(tables, dict):
            raise ConfigurationError(
                f"SCHEDULER_SCHEDULES_FILE {self.schedules_file}: [schedules] must be a table"
            )
        return tables
