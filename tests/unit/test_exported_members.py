"""The engine's public surface is a decision: adding or renaming an export changes this test."""

from __future__ import annotations

import insightdesk.shared.queue as engine

EXPECTED = {
    "Consumer",
    "CronScheduler",
    "Job",
    "JobInfo",
    "JobOptions",
    "JobState",
    "MemoryStore",
    "NewJob",
    "Outcome",
    "PgStore",
    "QueueClient",
    "QueueDefinition",
    "QueueOptions",
    "QueuePolicy",
    "QueueStats",
    "Reject",
    "RetryLater",
    "Snooze",
    "Worker",
    "make_pool",
}

CLIENT_METHODS = {
    "cancel", "claim", "close", "complete", "connect", "create_queue", "delete", "delete_queue",
    "ensure_queue", "fail", "find_jobs", "get_job", "get_queue", "list_queues", "migrate",
    "publish", "ready_count", "redrive", "resume", "retry", "scaler_query", "send",
    "send_many", "snooze", "stats", "subscribe", "subscriptions", "unsubscribe", "work",
    "work_many",
}  # fmt: skip


def test_the_engine_exports_exactly_its_public_names() -> None:
    assert set(engine.__all__) == EXPECTED
    for name in EXPECTED:
        assert getattr(engine, name).__module__.startswith("insightdesk.shared.queue")


def test_the_client_keeps_its_public_methods() -> None:
    public = {
        n
        for n in dir(engine.QueueClient)
        if not n.startswith("_") and callable(getattr(engine.QueueClient, n))
    }
    assert public == CLIENT_METHODS
