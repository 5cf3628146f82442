"""The reports service's one boundary to PostgreSQL (schema ``reports``).

It owns the pool, the statements (``sql/*.sql``, rendered once for the schema), error wrapping
and row mapping. Facts go in through :meth:`PgReportStore.apply` (once per event key); digests
read figures with a handful of aggregate statements; exports stream through a server-side
cursor. ``queries`` counts the statements run (the benchmark reports it).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import asdict
from datetime import date, datetime
from functools import cache
from importlib import resources
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from insightdesk.reports.digest import Figures, Organization, Period
from insightdesk.reports.facts import FactChange
from insightdesk.shared.contracts import AgentRow, Event, ExportFilters, SendEmail
from insightdesk.shared.errors import DatabaseError
from insightdesk.shared.migrations import load_migrations, migrate_schema

SCHEMA = "reports"
EXPORT_COLUMNS = (
    "id",
    "subject",
    "status",
    "priority",
    "customer_name",
    "customer_email",
    "assignee_name",
    "created_at",
    "first_response_at",
    "resolved_at",
    "closed_at",
)

Connection = psycopg.AsyncConnection[Any]
Publish = Callable[[SendEmail | Event, Connection], Awaitable[object]]
"""Sends a command to its queue, or publishes an event, in the given connection's transaction."""


@cache
def statement(name: str, schema: str = SCHEMA) -> str:
    """``sql/<name>.sql`` with ``{schema}`` replaced by the quoted identifier."""
    text = resources.files(__package__).joinpath("sql", f"{name}.sql").read_text("utf-8")
    return sql.SQL(text).format(schema=sql.Identifier(schema)).as_string(None)  # package file


class PgReportStore:
    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        publish: Publish | None = None,
        *,
        schema: str = SCHEMA,
    ) -> None:
        self.pool = pool
        self._publish = publish
        self.schema = schema
        self.queries = 0

    def _sql(self, name: str) -> str:
        self.queries += 1
        return statement(name, self.schema)

    @contextlib.asynccontextmanager
    async def _connection(self, action: str) -> AsyncIterator[Connection]:
        try:
            async with self.pool.connection() as conn:
                yield conn
        except psycopg.Error as exc:
            raise DatabaseError(f"reports store: {action} failed: {exc}") from exc

    @contextlib.asynccontextmanager
    async def _transaction(self, action: str) -> AsyncIterator[Connection]:
        async with self._connection(action) as conn, conn.transaction():
            yield conn

    async def _rows(self, name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        async with self._connection(name) as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(self._sql(name), params)
            return await cur.fetchall()

    # ------------------------------------------------------------------ facts

    async def apply(self, change: FactChange) -> bool:
        """Record ``change`` unless its event was seen before; True when it was applied."""
        at = {"occurred_at": change.occurred_at}
        async with self._transaction("apply") as conn:
            cur = await conn.execute(
                self._sql("record_event"),
                {"key": change.key, "name": change.name, **at},
            )
            if await cur.fetchone() is None:
                return False
            org = change.organization
            if org is not None:
                if org.authoritative:
                    params = {**asdict(org), **at}
                    await conn.execute(self._sql("upsert_organization"), params)
                else:
                    await conn.execute(self._sql("see_organization"), {"id": org.id})
            for user in change.users:
                await conn.execute(self._sql("upsert_user"), {**asdict(user), **at})
            if change.ticket is not None:
                await conn.execute(self._sql("upsert_ticket"), {**asdict(change.ticket), **at})
            if change.ticket_event is not None:
                params = {**asdict(change.ticket_event), "key": change.key, **at}
                await conn.execute(self._sql("insert_ticket_event"), params)
            for sla in change.slas:
                await conn.execute(self._sql("upsert_sla"), {**asdict(sla), **at})
        return True

    # ------------------------------------------------------------------ organizations

    async def organizations(self) -> list[Organization]:
        return [Organization(**r) for r in await self._rows("organizations", {})]

    async def organization(self, organization_id: uuid.UUID) -> Organization | None:
        rows = await self._rows("organization", {"id": organization_id})
        return Organization(**rows[0]) if rows else None

    async def recipients(self, organization_id: uuid.UUID) -> list[dict[str, Any]]:
        """The organization's agents and admins: id, email, name, role."""
        return await self._rows("recipients", {"organization_id": organization_id})

    # ------------------------------------------------------------------ figures

    async def figures(self, organization_id: uuid.UUID, span: Period, now: datetime) -> Figures:
        params = {
            "organization_id": organization_id,
            "start": span.start,
            "end": span.end,
            "now": now,
        }
        async with self._connection("figures") as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(self._sql("digest_counts"), params)
            head = await cur.fetchone()
            assert head is not None  # an aggregate always returns its row
            await cur.execute(self._sql("backlog"), params)
            backlog = await cur.fetchall()
            await cur.execute(self._sql("sla_targets"), params)
            sla = await cur.fetchall()
            await cur.execute(self._sql("agents"), params)
            agents = await cur.fetchall()

        def minutes(value: Any) -> float | None:
            return None if value is None else float(value)

        return Figures(
            new=head["new"],
            solved=head["solved"],
            reopened=head["reopened"],
            closed=head["closed"],
            unassigned=head["unassigned"],
            backlog_by_status={
                r["label"]: r["count"] for r in backlog if r["dimension"] == "status"
            },
            backlog_by_age={r["label"]: r["count"] for r in backlog if r["dimension"] == "age"},
            first_response_median=minutes(head["first_response_median"]),
            first_response_p90=minutes(head["first_response_p90"]),
            resolution_median=minutes(head["resolution_median"]),
            resolution_p90=minutes(head["resolution_p90"]),
            sla={r["target"]: (r["met"], r["breached"]) for r in sla},
            sla_breaches=head["sla_breaches"],
            at_risk=head["at_risk"],
            agents=tuple(
                AgentRow(
                    name=r["name"],
                    open_assigned=r["open_assigned"],
                    replies=r["replies"],
                    solved=r["solved"],
                )
                for r in agents
            ),
        )

    async def trend(
        self, organization_id: uuid.UUID, span: Period, time_zone: str
    ) -> list[tuple[date, int, int]]:
        rows = await self._rows(
            "trend",
            {
                "organization_id": organization_id,
                "start": span.start,
                "end": span.end,
                "time_zone": time_zone,
            },
        )
        return [(r["day"], r["new"], r["solved"]) for r in rows]

    async def response_histogram(self, organization_id: uuid.UUID, span: Period) -> list[int]:
        """First responses of the period per bucket of :data:`digest.RESPONSE_BUCKETS`."""
        rows = await self._rows(
            "response_histogram",
            {"organization_id": organization_id, "start": span.start, "end": span.end},
        )
        counts = [0] * 5
        for r in rows:
            counts[int(r["bucket"])] += r["count"]
        return counts

    # ------------------------------------------------------------------ sending once

    async def _publish_all(self, conn: Connection, messages: Sequence[SendEmail | Event]) -> None:
        if messages and self._publish is None:
            raise DatabaseError("reports store: built without a publisher")
        for message in messages:
            assert self._publish is not None
            await self._publish(message, conn)

    async def publish(self, messages: Sequence[SendEmail | Event]) -> None:
        """Publish ``messages`` together (one transaction)."""
        async with self._transaction("publish") as conn:
            await self._publish_all(conn, messages)

    async def send_once(
        self,
        kind: str,
        organization_id: uuid.UUID,
        period_start: date,
        messages: Sequence[SendEmail | Event],
    ) -> bool:
        """Publish ``messages`` in the transaction that records the run of (kind, organization,
        period); False, and nothing sent, when that run was recorded before."""
        async with self._transaction("send_once") as conn:
            cur = await conn.execute(
                self._sql("claim_run"),
                {
                    "kind": kind,
                    "organization_id": organization_id,
                    "period_start": period_start,
                    "recipients": sum(1 for m in messages if isinstance(m, SendEmail)),
                },
            )
            if await cur.fetchone() is None:
                return False
            await self._publish_all(conn, messages)
        return True

    # ------------------------------------------------------------------ exports

    async def export_rows(
        self,
        organization_id: uuid.UUID,
        filters: ExportFilters,
        *,
        batch: int = 2000,
    ) -> AsyncIterator[Sequence[Any]]:
        """The rows of an export (columns :data:`EXPORT_COLUMNS`) through a server-side cursor:
        at most ``batch`` rows are in memory at once, however many match."""
        params = {
            "organization_id": organization_id,
            "created_from": filters.created_from,
            "created_to": filters.created_to,
            "statuses": [s.value for s in filters.statuses],
            "priorities": [p.value for p in filters.priorities],
            "assignee_id": filters.assignee_id,
            "unassigned_only": filters.unassigned_only,
        }
        async with self._transaction("export") as conn:
            cursor = conn.cursor(f"export_{uuid.uuid4().hex}")
            cursor.itersize = batch
            await cursor.execute(self._sql("export_rows"), params)
            async for row in cursor:
                yield row
            await cursor.close()

    async def finish_export(
        self, record: dict[str, Any], messages: Sequence[SendEmail | Event]
    ) -> None:
        """Record the export file and publish ``messages`` in one transaction."""
        async with self._transaction("finish_export") as conn:
            await conn.execute(self._sql("record_export"), record)
            await self._publish_all(conn, messages)

    async def expired_exports(self, now: datetime, limit: int = 500) -> list[tuple[uuid.UUID, str]]:
        rows = await self._rows("expired_exports", {"now": now, "limit": limit})
        return [(r["export_id"], r["storage_key"]) for r in rows]

    async def mark_export_deleted(self, export_id: uuid.UUID, now: datetime) -> None:
        async with self._connection("mark_export_deleted") as conn:
            await conn.execute(
                self._sql("mark_export_deleted"), {"export_id": export_id, "now": now}
            )


async def migrate_reports_schema(conn: Connection, schema: str = SCHEMA) -> int:
    return await migrate_schema(
        conn, schema, load_migrations("insightdesk.reports", "migrations", schema)
    )
