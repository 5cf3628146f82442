"""What every console route needs, built once per app by :func:`create_console_app`."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from fastapi.templating import Jinja2Templates

from insightdesk.shared.ops.auth import OperatorAuth
from insightdesk.shared.queue.client import QueueClient
from insightdesk.shared.queue.control import QueueControl


@dataclass(frozen=True, slots=True)
class QueueRow:
    """One queue on the overview: counts, backlog age, pause flag and workers."""

    name: str
    paused: bool
    is_dead_letter: bool
    dead_letter: str | None
    ready: int
    delayed: int
    active: int
    completed: int
    failed: int
    cancelled: int
    oldest_ready_age: float
    workers: int
    concurrency: int


@dataclass(slots=True)
class Console:
    client: QueueClient
    control: QueueControl
    auth: OperatorAuth
    templates: Jinja2Templates

    async def queue_rows(self, queue: str | None = None) -> list[QueueRow]:
        views = {v.name: v for v in await self.control.queues(queue)}
        rows = []
        for s in await self.client.stats(queue):
            v = views.get(s.name)
            if v is None:
                continue
            queued = s.created + s.retry
            rows.append(
                QueueRow(
                    name=s.name,
                    paused=v.paused,
                    is_dead_letter=v.is_dead_letter,
                    dead_letter=v.dead_letter,
                    ready=s.ready,
                    delayed=max(0, queued - s.ready),
                    active=s.active,
                    completed=s.completed,
                    failed=s.failed,
                    cancelled=s.cancelled,
                    oldest_ready_age=s.oldest_ready_age,
                    workers=v.workers,
                    concurrency=v.concurrency,
                )
            )
        return rows


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def base_path(request: Request) -> str:
    """Where the console is mounted (``/ops`` under the scheduler, empty standalone)."""
    root: str = request.scope.get("root_path", "")
    return root.rstrip("/")
