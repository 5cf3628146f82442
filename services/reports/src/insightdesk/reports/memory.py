"""The in-memory twin of :class:`insightdesk.reports.store.PgReportStore`: the same behaviour
over plain Python data, held to the same contract tests (``tests/integration/reports/
test_store_contract.py``), so handlers and loops get fast tests without a database."""

from __future__ import annotations

import math
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from insightdesk.reports.digest import Figures, Organization, Period, zone
from insightdesk.reports.facts import FactChange, SlaFact, TicketEventFact, TicketFact
from insightdesk.shared.contracts import AgentRow, Event, ExportFilters, SendEmail

BACKLOG = ("open", "pending")
REOPENED_FROM = ("resolved", "closed")


def percentile(values: list[float], p: float) -> float | None:
    """PostgreSQL's ``percentile_cont``: linear interpolation between closest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    pos = p * (len(ordered) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass
class _Sla:
    organization_id: uuid.UUID
    due_at: datetime
    warned_at: datetime | None = None
    breached_at: datetime | None = None
    met_at: datetime | None = None


@dataclass
class InMemoryReportStore:
    organizations_: dict[uuid.UUID, dict[str, Any]] = field(default_factory=dict)
    users: dict[uuid.UUID, dict[str, Any]] = field(default_factory=dict)
    tickets: dict[uuid.UUID, tuple[TicketFact, datetime]] = field(default_factory=dict)
    events: list[tuple[TicketEventFact, datetime]] = field(default_factory=list)
    sla_outcomes: dict[tuple[uuid.UUID, str], _Sla] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)
    runs: set[tuple[str, uuid.UUID, date]] = field(default_factory=set)
    exports: dict[uuid.UUID, dict[str, Any]] = field(default_factory=dict)
    published: list[SendEmail | Event] = field(default_factory=list)

    # ------------------------------------------------------------------ facts

    async def apply(self, change: FactChange) -> bool:
        if change.key in self.seen:
            return False
        self.seen.add(change.key)
        at = change.occurred_at
        org = change.organization
        if org is not None:
            row = self.organizations_.get(org.id)
            if row is None:
                row = {"name": "", "time_zone": "UTC", "locale": "en", "updated_at": None}
                self.organizations_[org.id] = row
            if org.authoritative and (row["updated_at"] is None or row["updated_at"] <= at):
                for name in ("name", "time_zone", "locale"):
                    value = getattr(org, name)
                    if value is not None:
                        row[name] = value
                row["updated_at"] = at
        for user in change.users:
            old = self.users.get(user.id)
            if old is None or old["updated_at"] <= at:
                self.users[user.id] = {**asdict(user), "updated_at": at}
        if change.ticket is not None:
            current = self.tickets.get(change.ticket.id)
            if current is None:
                self.tickets[change.ticket.id] = (change.ticket, at)
            elif current[1] <= at:
                first = current[0].first_response_at or change.ticket.first_response_at
                kept = TicketFact(
                    **{
                        **asdict(change.ticket),
                        "first_response_at": first,
                        "customer_id": current[0].customer_id,
                        "created_at": current[0].created_at,
                        "organization_id": current[0].organization_id,
                    }
                )
                self.tickets[change.ticket.id] = (kept, at)
        if change.ticket_event is not None:
            self.events.append((change.ticket_event, at))
        for sla in change.slas:
            self._sla(sla, at)
        return True

    def _sla(self, fact: SlaFact, at: datetime) -> None:
        key = (fact.ticket_id, fact.target)
        row = self.sla_outcomes.get(key)
        if row is None:
            row = self.sla_outcomes[key] = _Sla(fact.organization_id, fact.due_at)
        row.due_at = fact.due_at
        if fact.outcome == "due":
            return
        name = f"{fact.outcome}_at"
        if getattr(row, name) is None:
            setattr(row, name, at)

    # ------------------------------------------------------------------ organizations

    async def organizations(self) -> list[Organization]:
        return [
            Organization(i, r["name"], r["time_zone"], r["locale"])
            for i, r in sorted(self.organizations_.items())
        ]

    async def organization(self, organization_id: uuid.UUID) -> Organization | None:
        r = self.organizations_.get(organization_id)
        return (
            None
            if r is None
            else Organization(organization_id, r["name"], r["time_zone"], r["locale"])
        )

    def _staff(self, organization_id: uuid.UUID) -> list[dict[str, Any]]:
        return sorted(
            (
                u
                for u in self.users.values()
                if u["organization_id"] == organization_id and u["role"] in ("agent", "admin")
            ),
            key=lambda u: (u["name"], u["id"]),
        )

    async def recipients(self, organization_id: uuid.UUID) -> list[dict[str, Any]]:
        return [
            {k: u[k] for k in ("id", "email", "name", "role")} for u in self._staff(organization_id)
        ]

    # ------------------------------------------------------------------ figures

    def _tickets(self, organization_id: uuid.UUID) -> list[TicketFact]:
        return [t for t, _ in self.tickets.values() if t.organization_id == organization_id]

    def _events(
        self, organization_id: uuid.UUID, start: datetime, end: datetime
    ) -> list[TicketEventFact]:
        return [
            e for e, at in self.events if e.organization_id == organization_id and start <= at < end
        ]

    async def figures(self, organization_id: uuid.UUID, span: Period, now: datetime) -> Figures:
        start, end = span.start, span.end
        tickets = self._tickets(organization_id)
        by_id = {t.id: t for t in tickets}
        events = self._events(organization_id, start, end)
        backlog = [t for t in tickets if t.status in BACKLOG]

        def distinct(pred: Any) -> int:
            return len({e.ticket_id for e in events if pred(e)})

        def within(at: datetime | None) -> bool:
            return at is not None and start <= at < end

        def minutes(a: datetime, b: datetime) -> float:
            return (b - a).total_seconds() / 60.0

        first = [
            minutes(t.created_at, t.first_response_at)
            for t in tickets
            if t.first_response_at is not None and within(t.first_response_at)
        ]
        resolution = [
            minutes(t.created_at, t.resolved_at)
            for t in tickets
            if t.resolved_at is not None and within(t.resolved_at)
        ]
        by_status: dict[str, int] = {}
        by_age: dict[str, int] = {}
        for t in backlog:
            by_status[t.status] = by_status.get(t.status, 0) + 1
            age = now - t.created_at
            bucket = (
                "< 1 day"
                if age < timedelta(days=1)
                else "1-3 days"
                if age < timedelta(days=3)
                else "3-7 days"
                if age < timedelta(days=7)
                else "> 7 days"
            )
            by_age[bucket] = by_age.get(bucket, 0) + 1
        sla: dict[str, tuple[int, int]] = {}
        at_risk = breaches = 0
        for (ticket_id, target), s in self.sla_outcomes.items():
            if s.organization_id != organization_id:
                continue
            if within(s.due_at) and (
                s.breached_at is not None or s.met_at is not None or s.due_at < now
            ):
                met, breached = sla.get(target, (0, 0))
                sla[target] = (
                    met + (s.breached_at is None),
                    breached + (s.breached_at is not None),
                )
            if within(s.breached_at):
                breaches += 1
            ticket = by_id.get(ticket_id)
            if (
                ticket is not None
                and now <= s.due_at < now + timedelta(hours=24)
                and s.breached_at is None
                and s.met_at is None
                and ticket.status in BACKLOG
                and not (target.startswith("first") and ticket.first_response_at is not None)
            ):
                at_risk += 1
        agents = tuple(
            AgentRow(
                name=u["name"],
                open_assigned=sum(1 for t in backlog if t.assignee_id == u["id"]),
                replies=sum(1 for e in events if e.actor_id == u["id"] and e.kind == "replied"),
                solved=distinct(
                    lambda e, uid=u["id"]: (
                        e.actor_id == uid
                        and e.kind == "status_changed"
                        and e.new_value == "resolved"
                    )
                ),
            )
            for u in self._staff(organization_id)
        )
        return Figures(
            new=sum(1 for t in tickets if within(t.created_at)),
            solved=distinct(lambda e: e.kind == "status_changed" and e.new_value == "resolved"),
            reopened=distinct(
                lambda e: (
                    e.kind == "status_changed"
                    and e.old_value in REOPENED_FROM
                    and e.new_value in BACKLOG
                )
            ),
            closed=distinct(
                lambda e: e.kind in ("status_changed", "closed") and e.new_value == "closed"
            ),
            unassigned=sum(1 for t in backlog if t.assignee_id is None),
            backlog_by_status=by_status,
            backlog_by_age=by_age,
            first_response_median=percentile(first, 0.5),
            first_response_p90=percentile(first, 0.9),
            resolution_median=percentile(resolution, 0.5),
            resolution_p90=percentile(resolution, 0.9),
            sla=sla,
            sla_breaches=breaches,
            at_risk=at_risk,
            agents=agents,
        )

    async def trend(
        self, organization_id: uuid.UUID, span: Period, time_zone: str
    ) -> list[tuple[date, int, int]]:
        tz = zone(time_zone)
        days = [span.first + timedelta(days=i) for i in range(span.days)]
        new = dict.fromkeys(days, 0)
        solved: dict[date, set[uuid.UUID]] = {d: set() for d in days}
        for t in self._tickets(organization_id):
            if span.start <= t.created_at < span.end:
                new[t.created_at.astimezone(tz).date()] += 1
        for e, at in self.events:
            if (
                e.organization_id == organization_id
                and span.start <= at < span.end
                and e.kind == "status_changed"
                and e.new_value == "resolved"
            ):
                solved[at.astimezone(tz).date()].add(e.ticket_id)
        return [(d, new[d], len(solved[d])) for d in days]

    async def response_histogram(self, organization_id: uuid.UUID, span: Period) -> list[int]:
        counts = [0] * 5
        for t in self._tickets(organization_id):
            at = t.first_response_at
            if at is not None and span.start <= at < span.end:
                wait = (at - t.created_at).total_seconds() / 60.0
                counts[sum(1 for bound in (15, 60, 240, 1440) if wait >= bound)] += 1
        return counts

    # ------------------------------------------------------------------ sending once

    async def publish(self, messages: Sequence[SendEmail | Event]) -> None:
        self.published.extend(messages)

    async def send_once(
        self,
        kind: str,
        organization_id: uuid.UUID,
        period_start: date,
        messages: Sequence[SendEmail | Event],
    ) -> bool:
        key = (kind, organization_id, period_start)
        if key in self.runs:
            return False
        self.runs.add(key)
        self.published.extend(messages)
        return True

    # ------------------------------------------------------------------ exports

    async def export_rows(
        self, organization_id: uuid.UUID, filters: ExportFilters
    ) -> AsyncIterator[Sequence[Any]]:
        statuses = {s.value for s in filters.statuses}
        priorities = {p.value for p in filters.priorities}
        rows = [
            t
            for t in self._tickets(organization_id)
            if (filters.created_from is None or t.created_at >= filters.created_from)
            and (filters.created_to is None or t.created_at < filters.created_to)
            and (not statuses or t.status in statuses)
            and (not priorities or t.priority in priorities)
            and (filters.assignee_id is None or t.assignee_id == filters.assignee_id)
            and (not filters.unassigned_only or t.assignee_id is None)
        ]
        rows.sort(key=lambda t: (t.created_at, t.id))
        for t in rows:
            yield (
                t.id,
                t.subject,
                t.status,
                t.priority,
                t.customer_name,
                t.customer_email,
                t.assignee_name,
                t.created_at,
                t.first_response_at,
                t.resolved_at,
                t.closed_at,
            )

    async def finish_export(
        self, record: dict[str, Any], messages: Sequence[SendEmail | Event]
    ) -> None:
        self.exports[record["export_id"]] = {**record, "deleted_at": None}
        self.published.extend(messages)

    async def expired_exports(self, now: datetime, limit: int = 500) -> list[tuple[uuid.UUID, str]]:
        due = sorted(
            (
                r
                for r in self.exports.values()
                if r["deleted_at"] is None and r["expires_at"] <= now
            ),
            key=lambda r: r["expires_at"],
        )
        return [(r["export_id"], r["storage_key"]) for r in due[:limit]]

    async def mark_export_deleted(self, export_id: uuid.UUID, now: datetime) -> None:
        self.exports[export_id]["deleted_at"] = now
