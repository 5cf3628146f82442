"""The PostgreSQL job queue engine (a Python re-creation of the pg-boss design).

Public surface: :class:`QueueClient` (send, publish, operations, stats, ``work``/``work_many``),
:class:`JobOptions` / :class:`QueueOptions` / :class:`QueuePolicy` and the stored
:class:`QueueDefinition`, the :class:`Job` a handler receives, the outcomes it may raise
(:class:`Snooze`, :class:`RetryLater`, :class:`Reject`) and those reported (:class:`Outcome`),
the process's claim loop (:class:`Consumer`, one per client, shared by all its :class:`Worker`
objects), the store boundary (:class:`PgStore`) with its in-memory twin (:class:`MemoryStore`),
and :class:`CronScheduler` for cron schedules. ``tests/unit/test_exported_members.py`` pins it.
"""

from insightdesk.shared.queue.batches import NewJob
from insightdesk.shared.queue.client import QueueClient, make_pool
from insightdesk.shared.queue.consumer import Consumer
from insightdesk.shared.queue.jobs import Job, JobInfo, JobState, QueueStats
from insightdesk.shared.queue.memory import MemoryStore
from insightdesk.shared.queue.options import (
    JobOptions,
    QueueDefinition,
    QueueOptions,
    QueuePolicy,
)
from insightdesk.shared.queue.outcomes import Outcome, Reject, RetryLater, Snooze
from insightdesk.shared.queue.scheduler import CronScheduler
from insightdesk.shared.queue.store import PgStore
from insightdesk.shared.queue.worker import Worker

__all__ = [
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
]
