"""The README's first command, run as a real process against a real database."""

from __future__ import annotations

import os
import subprocess
import sys


def test_demo_sends_works_and_reports_jobs(db_dsn: str) -> None:
    env = {**os.environ, "DATABASE_URL": db_dsn}
    result = subprocess.run(
        [sys.executable, "-m", "insightdesk.shared.queue.cli", "demo", "--jobs", "300"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "sent 300 jobs in one call" in out
    assert "worked 302 jobs" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith("demo")}
    assert rows["demo"][4] == "301"  # completed
    assert rows["demo"][5] == "1"  # the poison job failed ...
    assert rows["demo-dead"][1] == "1"  # ... and waits in the dead-letter queue
    assert rows["demo-audit"][4] == "1"  # the event reached its subscriber


def test_demo_reports_a_bad_database_url_clearly() -> None:
    env = {**os.environ, "DATABASE_URL": "postgresql+psycopg://nope"}
    result = subprocess.run(
        [sys.executable, "-m", "insightdesk.shared.queue.cli", "demo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "plain libpq URI" in result.stderr
