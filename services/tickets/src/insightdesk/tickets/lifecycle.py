"""Ticket lifecycle jobs (the worker's use cases): auto-close and archive.

* :func:`auto_close` closes every ticket resolved longer than its organization's
  ``auto_close_after_days`` (0 = never), in keyset-paginated batches, one transaction per
  batch: the batch's conditional update (a ticket reopened meanwhile is left alone), its
  ``ticket.closed`` events (reason ``auto``) and the ``ticket-closed`` mails commit together.
  Rows another run holds are skipped (``SKIP LOCKED``) and a closed ticket is no longer due, so
  two runs at once, or a rerun, close nothing twice and mail nobody twice.
* :func:`archive_closed` archives tickets closed longer than a setting: they leave the default
  listing and stay readable by id.

Both stop after ``max_seconds`` (bounded time per run); the next run continues where the data
says, since progress is the data itself. No transport here: the store and its transactions
come in through :class:`LifecycleStore`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from insightdesk.shared.contracts import TicketClosed, TicketSnapshot
from insightdesk.tickets.notifications import Notification, notifications_for


@dataclass(frozen=True, slots=True)
class Closed:
    """A ticket one batch closed, as the event needs it, and the organization's locale."""

    ticket: TicketSnapshot
    locale: str

    @property
    def cursor(self) -> tuple[datetime, uuid.UUID]:
        assert self.ticket.resolved_at is not None  # only resolved tickets are closed
        return self.ticket.resolved_at, self.ticket.id


class LifecycleBatch(Protocol):
    """One transaction of the store: nothing is visible until the batch context exits."""

    async def close_due(
        self, now: datetime, after: tuple[datetime, uuid.UUID] | None, limit: int
    ) -> list[Closed]:
        """Close up to ``limit`` due tickets past the keyset ``after``, oldest first."""

    async def archive_closed_before(self, cutoff: datetime, now: datetime, limit: int) -> int:
        """Archive up to ``limit`` tickets closed before ``cutoff``; how many were."""

    async def publish(self, events: Sequence[TicketClosed]) -> None:
        """Publish the events in this transaction."""

    async def send(self, notifications: Sequence[Notification]) -> None:
        """Queue the mails in this transaction."""


class LifecycleStore(Protocol):
    def batch(self) -> AbstractAsyncContextManager[LifecycleBatch]: ...


@dataclass(frozen=True, slots=True)
class RunResult:
    done: int
    batches: int
    finished: bool
    """False when the time budget ran out first (the next run continues)."""

    def as_output(self) -> dict[str, object]:
        return {"done": self.done, "batches": self.batches, "finished": self.finished}


async def auto_close(
    *, store: LifecycleStore, now: datetime, batch_size: int = 500, max_seconds: float = 600.0
) -> RunResult:
    """Close the due resolved tickets (see the module docstring)."""
    started = time.monotonic()
    cursor: tuple[datetime, uuid.UUID] | None = None
    done = batches = 0
    while True:
        async with store.batch() as tx:
            closed = await tx.close_due(now, cursor, batch_size)
            events = [TicketClosed(occurred_at=now, ticket=c.ticket, reason="auto") for c in closed]
            await tx.publish(events)
            await tx.send(
                [
                    _localised(notification, c.locale)
                    for c, event in zip(closed, events, strict=True)
                    for notification in notifications_for(event)
                    if isinstance(notification, Notification)  # a closing mails at once
                ]
            )
        batches += 1
        done += len(closed)
        if len(closed) < batch_size:
            return RunResult(done, batches, finished=True)
        cursor = max(c.cursor for c in closed)
        if time.monotonic() - started > max_seconds:
            return RunResult(done, batches, finished=False)


async def archive_closed(
    *,
    store: LifecycleStore,
    now: datetime,
    after_days: int,
    batch_size: int = 1000,
    max_seconds: float = 60.0,
) -> RunResult:
    """Archive tickets closed more than ``after_days`` days before ``now``."""
    started = time.monotonic()
    cutoff = now - timedelta(days=after_days)
    done = batches = 0
    while True:
        async with store.batch() as tx:
            archived = await tx.archive_closed_before(cutoff, now, batch_size)
        batches += 1
        done += archived
        if archived < batch_size:
            return RunResult(done, batches, finished=True)
        if time.monotonic() - started > max_seconds:
            return RunResult(done, batches, finished=False)


def _localised(notification: Notification, locale: str) -> Notification:
    command = notification.command.model_copy(update={"locale": locale})
    return Notification(command)
