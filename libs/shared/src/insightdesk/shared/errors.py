"""One error tree for the whole product.

Everything the project raises on purpose derives from :class:`InsightDeskError`, so callers can
catch "ours" in one place. Driver errors (psycopg) are wrapped at the database boundary with
``raise ... from exc`` so the cause is kept but never leaks as the public type.
"""

from __future__ import annotations


class InsightDeskError(Exception):
    """Root of every error the project raises on purpose."""


class ConfigurationError(InsightDeskError):
    """Settings are missing, malformed or unsafe for the environment."""


class QueueError(InsightDeskError):
    """Base class for errors of the queue engine."""


class InvalidArgument(QueueError, ValueError):
    """An argument to the engine is malformed (bad name, negative delay, non-JSON payload...)."""


class InvalidOutcome(InvalidArgument):
    """A handler outcome cannot be carried out (e.g. a ``Snooze`` or ``RetryLater`` delay that is
    not finite or is beyond the engine's bound); the job fails that attempt with this error."""


class InvalidQueueName(InvalidArgument):
    """A queue or event name does not match the allowed pattern."""


class InvalidCron(InvalidArgument):
    """A cron expression or its time zone cannot be used."""


class QueueNotFound(QueueError, LookupError):
    """The named queue has not been created."""


class JobNotFound(QueueError, LookupError):
    """No job has the given id."""


class DatabaseError(QueueError):
    """The database failed in a way the engine cannot handle itself (wraps psycopg errors)."""


class JobConflict(DatabaseError):
    """A queue policy (singleton, stately, short, exclusive, throttle) already holds a job for
    the key the operation would give a second one (e.g. retrying a failed job of a stately
    queue while another job of its key waits); nothing was changed."""


class MigrationError(DatabaseError):
    """The queue schema could not be installed or upgraded."""


class ConnectionLost(DatabaseError):
    """The connection to the database broke; the operation may be retried on a new one."""
