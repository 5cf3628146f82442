"""The tickets worker's SLA consumers: queue adapters for :mod:`insightdesk.tickets.sla_events`.

* queue ``tickets.sla-targets``, subscribed to ``sla.clock_changed``: the ticket's targets;
* queue ``tickets.sla-alerts``, subscribed to ``sla.warning`` and ``sla.breached``: mails to
  the assignee (or every agent when unassigned) and the admins, escalation levels included.

Each job runs in one SQLAlchemy session (the tickets schema's own transaction); the mails it
queues join that transaction through the outbox.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from insightdesk.shared.contracts import SlaBreached, SlaClockChanged, SlaWarning
from insightdesk.shared.queue import QueueClient, QueueOptions
from insightdesk.shared.queue.broker import PgBroker
from insightdesk.tickets.outbox import BrokerOutbox
from insightdesk.tickets.repository import TicketRepository
from insightdesk.tickets.sla_events import on_clock_changed, on_sla_alert
from insightdesk.tickets.sla_repository import SlaRepository

TARGETS_QUEUE = "tickets.sla-targets"
ALERTS_QUEUE = "tickets.sla-alerts"
SLA_QUEUE_OPTIONS = QueueOptions(retry_limit=10, retry_delay=2, retry_backoff=True)
SLA_QUEUES = (
    (TARGETS_QUEUE, (SlaClockChanged.name,)),
    (ALERTS_QUEUE, (SlaWarning.name, SlaBreached.name)),
)
"""The queues and the events each is subscribed to (``migrate`` declares them)."""


async def declare_sla_queues(client: QueueClient) -> None:
    """Create the SLA queues and subscribe them, so events published before the worker first
    runs are kept."""
    for queue, events in SLA_QUEUES:
        await client.create_queue(queue, SLA_QUEUE_OPTIONS)
        for event in events:
            await client.subscribe(event, queue)


def alert(body: dict[str, Any]) -> SlaWarning | SlaBreached:
    """``sla.breached`` carries an escalation level, ``sla.warning`` does not."""
    if "escalation_level" in body:
        return SlaBreached.model_validate(body)
    return SlaWarning.model_validate(body)


def register_sla_consumers(
    broker: PgBroker,
    sessions: async_sessionmaker[AsyncSession],
    *,
    concurrency: int = 4,
) -> None:
    @broker.subscriber(
        TARGETS_QUEUE,
        events=[SlaClockChanged.name],
        concurrency=concurrency,
        policy=SLA_QUEUE_OPTIONS,
        description="sla.clock_changed: each ticket's SLA targets, newest report wins",
    )
    async def targets(event: SlaClockChanged) -> dict[str, bool]:
        async with sessions() as session:
            stored = await on_clock_changed(event, sla=SlaRepository(session))
            await session.commit()
        return {"stored": stored}

    @broker.subscriber(
        ALERTS_QUEUE,
        events=[SlaWarning.name, SlaBreached.name],
        concurrency=concurrency,
        policy=SLA_QUEUE_OPTIONS,
        description="sla.warning / sla.breached: mail the assignee or agents, and the admins",
    )
    async def alerts(body: dict[str, Any]) -> dict[str, int]:
        event = alert(body)
        async with sessions() as session:
            sent = await on_sla_alert(
                event,
                tickets=TicketRepository(session),
                sla=SlaRepository(session),
                outbox=BrokerOutbox(broker, session),
            )
            await session.commit()
        return {"mails": sent}
