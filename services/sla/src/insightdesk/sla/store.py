"""The SLA store on PostgreSQL (schema ``sla``) and the outbox on the queue, sharing one
connection and transaction per unit of work.

Statements live in ``sql/*.sql``, rendered once for the schema; rows are mapped by column
name; psycopg errors become :class:`insightdesk.shared.errors.DatabaseError`.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from insightdesk.shared.contracts import (
    BusinessCalendarConfig,
    ClockState,
    Event,
    SlaPolicyConfig,
    SlaTargetKind,
    TicketPriority,
    TicketStatus,
    TimeMode,
)
from insightdesk.shared.errors import DatabaseError
from insightdesk.shared.queue import JobOptions, NewJob
from insightdesk.shared.queue.broker import PgBroker
from insightdesk.sla.clocks import Check, CheckKind, Clock, Pause
from insightdesk.sla.ports import CalendarRecord, LogEntry
from insightdesk.sla.tracking import PolicyRecord, TicketState

__all__ = ["CHECK_QUEUE", "SCAN_QUEUE", "SCHEMA", "PgOutbox", "PgStore", "PgUnit", "PgUnitFactory"]

SCHEMA = "sla"
CHECK_QUEUE = "sla-check"
SCAN_QUEUE = "sla-scan"


@cache
def statement(name: str, schema: str = SCHEMA) -> str:
    """``sql/<name>.sql`` with ``{schema}`` replaced by the quoted identifier."""
    text = resources.files(__package__).joinpath("sql", f"{name}.sql").read_text("utf-8")
    return sql.SQL(text).format(schema=sql.Identifier(schema)).as_string(None)  # package file


def check_payload(check: Check) -> dict[str, Any]:
    return {
        "ticket_id": str(check.ticket_id),
        "target": check.target.value,
        "cycle": check.cycle,
        "version": check.version,
        "kind": check.kind.value,
        "level": check.level,
        "run_at": check.run_at.isoformat(),
    }


def check_from_payload(data: dict[str, Any]) -> Check:
    return Check(
        ticket_id=uuid.UUID(data["ticket_id"]),
        target=SlaTargetKind(data["target"]),
        cycle=int(data["cycle"]),
        version=int(data["version"]),
        kind=CheckKind(data["kind"]),
        run_at=datetime.fromisoformat(data["run_at"]),
        level=int(data.get("level", 0)),
    )


class PgStore:
    def __init__(self, conn: psycopg.AsyncConnection[Any], schema: str = SCHEMA) -> None:
        self.conn = conn
        self.schema = schema

    async def _rows(self, name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        cur = self.conn.cursor(row_factory=dict_row)
        await cur.execute(statement(name, self.schema), params)
        return await cur.fetchall() if cur.description else []

    async def _inserted(self, name: str, params: dict[str, Any]) -> bool:
        return bool(await self._rows(name, params))

    async def claim_event(self, key: str) -> bool:
        return await self._inserted("claim_event", {"key": key})

    async def tickets(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, TicketState]:
        rows = await self._rows("tickets", {"ids": list(ids)})
        return {r["id"]: _ticket(r) for r in rows}

    async def ensure_ticket(self, ticket: TicketState) -> None:
        await self._rows("ensure_ticket", _ticket_params(ticket))

    async def save_tickets(self, tickets: Sequence[TicketState]) -> None:
        unique = {t.id: t for t in tickets}  # the last one wins
        if unique:
            rows = [_ticket_params(t) for t in unique.values()]
            await self._rows("save_tickets", _columns(rows))

    async def clocks(self, ticket_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Clock]]:
        found: dict[uuid.UUID, list[Clock]] = {}
        for row in await self._rows("clocks", {"ids": list(ticket_ids)}):
            found.setdefault(row["ticket_id"], []).append(_clock(row))
        return found

    async def save_clocks(self, clocks: Sequence[Clock]) -> None:
        unique = {(c.ticket_id, c.target, c.cycle): c for c in clocks}  # the last one wins
        if unique:
            rows = [_clock_params(c) for c in unique.values()]
            await self._rows("save_clocks", _columns(rows))

    async def record_breach(self, clock: Clock, at: datetime) -> bool:
        return await self._inserted(
            "record_breach",
            {
                "ticket_id": clock.ticket_id,
                "target": clock.target.value,
                "cycle": clock.cycle,
                "organization_id": clock.organization_id,
                "due_at": clock.due_at or at,
                "version": clock.version,
                "at": at,
            },
        )

    async def record_warning(self, clock: Clock, at: datetime) -> bool:
        return await self._inserted(
            "record_warning",
            {
                "ticket_id": clock.ticket_id,
                "target": clock.target.value,
                "cycle": clock.cycle,
                "version": clock.version,
                "at": at,
            },
        )

    async def record_escalation(self, check: Check, at: datetime) -> bool:
        return await self._inserted(
            "record_escalation",
            {
                "ticket_id": check.ticket_id,
                "target": check.target.value,
                "cycle": check.cycle,
                "version": check.version,
                "level": check.level,
                "at": at,
            },
        )

    async def append_log(self, entries: Sequence[LogEntry]) -> None:
        if entries:
            rows = [
                {
                    "ticket_id": e.ticket_id,
                    "at": e.at,
                    "kind": e.kind,
                    "target": e.target.value if e.target else None,
                    "cycle": e.cycle,
                    "detail": Jsonb(e.detail) if e.detail is not None else None,
                }
                for e in entries
            ]
            await self._rows("append_log", _columns(rows))

    async def log(self, ticket_id: uuid.UUID) -> list[LogEntry]:
        return [
            LogEntry(
                r["ticket_id"],
                r["at"],
                r["kind"],
                SlaTargetKind(r["target"]) if r["target"] else None,
                r["cycle"],
                r["detail"],
            )
            for r in await self._rows("log", {"ticket_id": ticket_id})
        ]

    async def policies(self, organization_id: uuid.UUID) -> list[PolicyRecord]:
        return [
            PolicyRecord(
                r["id"],
                r["organization_id"],
                r["version"],
                SlaPolicyConfig.model_validate(r["config"]) if r["config"] is not None else None,
            )
            for r in await self._rows("policies", {"organization_id": organization_id})
        ]

    async def put_policy(self, record: PolicyRecord) -> bool:
        return await self._inserted(
            "put_policy",
            {
                "id": record.id,
                "organization_id": record.organization_id,
                "version": record.version,
                "config": Jsonb(record.config.model_dump(mode="json")) if record.config else None,
            },
        )

    async def calendars(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, CalendarRecord]:
        return {
            r["id"]: CalendarRecord(
                r["id"],
                r["organization_id"],
                r["version"],
                BusinessCalendarConfig.model_validate(r["config"])
                if r["config"] is not None
                else None,
            )
            for r in await self._rows("calendars", {"ids": list(ids)})
        }

    async def put_calendar(self, record: CalendarRecord) -> bool:
        return await self._inserted(
            "put_calendar",
            {
                "id": record.id,
                "organization_id": record.organization_id,
                "version": record.version,
                "config": Jsonb(record.config.model_dump(mode="json")) if record.config else None,
            },
        )

    async def open_tickets(
        self,
        *,
        organization_id: uuid.UUID | None = None,
        calendar_id: uuid.UUID | None = None,
    ) -> list[uuid.UUID]:
        rows = await self._rows(
            "open_tickets", {"organization_id": organization_id, "calendar_id": calendar_id}
        )
        return [r["ticket_id"] for r in rows]

    async def overdue(self, now: datetime, limit: int) -> list[Check]:
        return [
            Check(
                r["ticket_id"],
                SlaTargetKind(r["target"]),
                r["cycle"],
                r["version"],
                CheckKind(r["kind"]),
                r["run_at"],
            )
            for r in await self._rows("overdue", {"now": now, "limit": limit})
        ]


def _columns(rows: Sequence[dict[str, Any]]) -> dict[str, list[Any]]:
    """Rows as one list per column: the arrays an ``unnest(...)`` statement takes."""
    return {key: [row[key] for row in rows] for key in rows[0]}


def _ticket_params(t: TicketState) -> dict[str, Any]:
    return {
        "id": t.id,
        "organization_id": t.organization_id,
        "customer_id": t.customer_id,
        "status": t.status.value,
        "priority": t.priority.value,
        "created_at": t.created_at,
        "snapshot_at": t.snapshot_at,
        "first_response_at": t.first_response_at,
        "resolved_at": t.resolved_at,
        "closed_at": t.closed_at,
        "last_staff_message_at": t.last_staff_message_at,
        "policy_id": t.policy_id,
        "sequence": t.sequence,
    }


def _ticket(r: dict[str, Any]) -> TicketState:
    return TicketState(
        id=r["id"],
        organization_id=r["organization_id"],
        customer_id=r["customer_id"],
        status=TicketStatus(r["status"]),
        priority=TicketPriority(r["priority"]),
        created_at=r["created_at"],
        snapshot_at=r["snapshot_at"],
        first_response_at=r["first_response_at"],
        resolved_at=r["resolved_at"],
        closed_at=r["closed_at"],
        last_staff_message_at=r["last_staff_message_at"],
        policy_id=r["policy_id"],
        sequence=r["sequence"],
    )


def _clock_params(c: Clock) -> dict[str, Any]:
    return {
        "ticket_id": c.ticket_id,
        "target": c.target.value,
        "cycle": c.cycle,
        "organization_id": c.organization_id,
        "policy_id": c.policy_id,
        "calendar_id": c.calendar_id,
        "mode": c.mode.value,
        "state": c.state.value,
        "started_at": c.started_at,
        "budget": c.budget,
        "used": c.used,
        "since": c.checkpoint,
        "due_at": c.due_at,
        "warn_at": c.warn_at,
        "version": c.version,
        "finished_at": c.finished_at,
        "warned": c.warned,
        "breached": c.breached,
        "pauses": Jsonb(
            [
                {
                    "paused_at": p.paused_at.isoformat(),
                    "resumed_at": p.resumed_at.isoformat() if p.resumed_at else None,
                }
                for p in c.pauses
            ]
        ),
    }


def _clock(r: dict[str, Any]) -> Clock:
    return Clock(
        ticket_id=r["ticket_id"],
        organization_id=r["organization_id"],
        target=SlaTargetKind(r["target"]),
        cycle=r["cycle"],
        started_at=r["started_at"],
        budget=r["budget"],
        mode=TimeMode(r["mode"]),
        calendar_id=r["calendar_id"],
        policy_id=r["policy_id"],
        state=ClockState(r["state"]),
        used=r["used"],
        since=r["since"],
        due_at=r["due_at"],
        warn_at=r["warn_at"],
        version=r["version"],
        finished_at=r["finished_at"],
        warned=r["warned"],
        breached=r["breached"],
        pauses=[
            Pause(
                datetime.fromisoformat(p["paused_at"]),
                datetime.fromisoformat(p["resumed_at"]) if p["resumed_at"] else None,
            )
            for p in r["pauses"]
        ],
    )


class PgOutbox:
    """Events through ``PgBroker.publish_event`` and check jobs through the engine's
    ``send_many``, on the unit's connection (the outbox pattern)."""

    def __init__(self, broker: PgBroker, conn: psycopg.AsyncConnection[Any]) -> None:
        self.broker = broker
        self.conn = conn

    async def publish(self, event: Event) -> None:
        await self.broker.publish_event(event.name, event, conn=self.conn)

    async def schedule(self, checks: Sequence[Check]) -> int:
        if not checks:
            return 0
        jobs = [
            NewJob(
                check_payload(c),
                JobOptions(start_after=c.run_at, singleton_key=c.key),
            )
            for c in checks
        ]
        ids = await self.broker.client.send_many(CHECK_QUEUE, jobs, conn=self.conn)
        return sum(i is not None for i in ids)


class PgUnit:
    def __init__(self, store: PgStore, outbox: PgOutbox) -> None:
        self.store = store
        self.outbox = outbox


class PgUnitFactory:
    """``async with units() as unit``: one pooled connection, one transaction."""

    def __init__(
        self, pool: AsyncConnectionPool[Any], broker: PgBroker, schema: str = SCHEMA
    ) -> None:
        self.pool = pool
        self.broker = broker
        self.schema = schema

    @contextlib.asynccontextmanager
    async def __call__(self) -> AsyncIterator[PgUnit]:
        try:
            async with self.pool.connection() as conn, conn.transaction():
                yield PgUnit(PgStore(conn, self.schema), PgOutbox(self.broker, conn))
        except psycopg.Error as exc:
            raise DatabaseError(f"sla store: {exc}") from exc
