"""What tickets does with the SLA service's events (transport-free use cases).

* ``sla.clock_changed`` → the ticket's SLA targets as reported (the newest ``sequence`` wins),
  shown on ticket detail and list and filtered on with ``GET /tickets?sla=...``;
* ``sla.warning`` / ``sla.breached`` → mails (:mod:`insightdesk.tickets.sla_alerts`) through
  the outbox, in the same transaction.
"""

from __future__ import annotations

from insightdesk.shared.contracts import ClockState, SlaBreached, SlaClockChanged, SlaWarning
from insightdesk.tickets.ports import Outbox
from insightdesk.tickets.repository import TicketRepository
from insightdesk.tickets.sla_alerts import sla_notifications
from insightdesk.tickets.sla_models import TicketSlaRow
from insightdesk.tickets.sla_repository import SlaRepository


async def on_clock_changed(event: SlaClockChanged, *, sla: SlaRepository) -> bool:
    """Record the ticket's targets; False when an equal or newer report is already stored."""
    open_states = (ClockState.RUNNING, ClockState.PAUSED)
    row = TicketSlaRow(
        ticket_id=event.ticket_id,
        organization_id=event.organization_id,
        sequence=event.sequence,
        targets=[t.model_dump(mode="json") for t in event.targets],
        breached=any(t.breached for t in event.targets),
        at_risk=any(t.warned and not t.breached and t.state in open_states for t in event.targets),
        as_of=event.occurred_at,
    )
    return await sla.record_targets(row)


async def on_sla_alert(
    event: SlaWarning | SlaBreached,
    *,
    tickets: TicketRepository,
    sla: SlaRepository,
    outbox: Outbox,
) -> int:
    """Queue the alert's mails; the number queued (0 for an unknown ticket)."""
    ticket = await tickets.ticket(event.organization_id, event.ticket_id)
    if ticket is None:
        return 0
    view = await tickets.view(ticket)
    organization = await sla.organization(event.organization_id)
    locale = organization.locale if organization is not None else "en"
    sent = 0
    for notification in sla_notifications(
        event,
        ticket=view.snapshot(),
        staff=await sla.staff(event.organization_id),
        locale=locale,
    ):
        sent += await outbox.send(notification)
    return sent
