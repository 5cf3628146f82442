"""``insightdesk-queue`` operator commands against a real database: readable tables, actions
by id and by filter with a progress bar, pause/resume, workers, clear errors."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from insightdesk.shared.queue import QueueClient, QueueOptions
from insightdesk.shared.queue.cli import main
from insightdesk.shared.queue.control import QueueControl


def _seed(dsn: str) -> list[uuid.UUID]:
    async def seed() -> list[uuid.UUID]:
        async with QueueClient.connect(dsn, migrate_schema=False) as client:
            await client.create_queue("email", QueueOptions(retry_limit=0))
            ids = [i for i in await client.send_many("email", [{"n": n} for n in range(4)]) if i]
            for job in await client.claim("email", 3):
                await client.fail(job, RuntimeError(f"smtp down {job.data['n']}"))
            return ids

    return asyncio.run(seed())


def _paused(dsn: str) -> bool:
    async def read() -> bool:
        async with QueueClient.connect(dsn, migrate_schema=False) as client:
            return (await QueueControl(client).queues("email"))[0].paused

    return asyncio.run(read())


@pytest.fixture
def dsn(db_dsn: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DATABASE_URL", db_dsn)
    return db_dsn


def test_jobs_list_show_and_filters(dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    ids = _seed(dsn)
    assert main(["jobs", "list", "--queue", "email", "--state", "failed"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[0].split() == ["id", "queue", "state", "attempt", "key", "created", "data"]
    assert len(listed) == 2 + 3 and all("failed" in line for line in listed[2:])
    assert main(["jobs", "show", str(ids[0])]) == 0
    shown = capsys.readouterr().out
    assert "state" in shown and "failed" in shown
    assert "attempt 1 failed" in shown and "RuntimeError: smtp down 0" in shown
    assert main(["jobs", "show", str(uuid.uuid4())]) == 1
    assert "no job with id" in capsys.readouterr().err
    assert main(["jobs", "list", "--data", "[1]"]) == 1
    assert "data: give a JSON object" in capsys.readouterr().err


def test_bulk_retry_by_filter_shows_progress_and_delete_needs_a_filter(
    dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = _seed(dsn)
    assert main(["jobs", "retry", "--queue", "email", "--state", "failed", "--batch", "2"]) == 0
    captured = capsys.readouterr()
    assert "3 of 3 matching job(s) retry" in captured.out
    assert "[" in captured.err and "100%" in captured.err and "3/3 matched" in captured.err
    assert main(["jobs", "delete"]) == 1
    assert "--all" in capsys.readouterr().err
    assert main(["jobs", "cancel", str(ids[3])]) == 0
    assert "1 of 1 job(s) cancel" in capsys.readouterr().out


def test_queues_pause_resume_and_workers(dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    _seed(dsn)
    assert main(["queues", "pause", "email"]) == 0
    assert _paused(dsn)
    assert main(["queues", "resume", "email"]) == 0
    assert not _paused(dsn)
    assert main(["queues", "pause", "nope"]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["workers"]) == 0
    assert capsys.readouterr().out.splitlines()[0].split()[:3] == ["queue", "host", "pid"]
