"""The PostgreSQL job queue engine (a Python re-creation of the pg-boss design).

Public surface: :class:`QueueClient` (send, publish, operations, stats, ``work``),
:class:`JobOptions` / :class:`QueueOptions` / :class:`QueuePolicy`, the :class:`Job` a handler
receives and the outcomes it may raise (:class:`Snooze`, :class:`RetryLater`, :class:`Reject`),
and :class:`CronScheduler` for cron schedules.
"""

from insightdesk.shared.queue.batches import NewJob
from insightdesk.shared.queue.client import QueueClient, make_pool
from insightdesk.shared.queue.jobs import Job, JobInfo, JobState, QueueStats
from insightdesk.shared.queue.options import JobOptions, QueueOptions, QueuePolicy
from insightdesk.shared.queue.outcomes import Reject, RetryLater, Snooze
from insightdesk.shared.queue.scheduler import CronScheduler
from insightdesk.shared.queue.worker import Worker

__all__ = [
    "CronScheduler",
    "Job",
    "JobInfo",
    "JobOptions",
    "JobState",
    "NewJob",
    "QueueClient",
    "QueueOptions",
    "QueuePolicy",
    "QueueStats",
    "Reject",
    "RetryLater",
    "Snooze",
    "Worker",
    "make_pool",
]
