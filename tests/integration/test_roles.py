"""Least privilege: each service's login role reaches its own schema and the queue, nothing else.

Roles are cluster-wide, so each test makes its own (a unique prefix) and drops them after."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import psycopg
import pytest
from psycopg import conninfo, sql

from insightdesk.email.database import migrate as migrate_email
from insightdesk.reports.app import declare_queues as declare_reports_queues
from insightdesk.shared.queue import QueueClient
from insightdesk.shared.roles import ensure_roles
from insightdesk.shared.service import migrate_service
from insightdesk.sla.__main__ import declare_queues as declare_sla_queues
from insightdesk.tickets.database import migrate_database as migrate_tickets


def as_role(dsn: str, role: str) -> str:
    params = conninfo.conninfo_to_dict(dsn)
    params["user"] = role
    params.pop("password", None)
    return conninfo.make_conninfo("", **params)


@pytest.fixture
async def roles(db_dsn: str) -> AsyncIterator[dict[str, str]]:
    await migrate_tickets(db_dsn)
    await migrate_email(db_dsn)
    await migrate_service(
        db_dsn, schema="sla", package="insightdesk.sla", declare=declare_sla_queues
    )
    await migrate_service(
        db_dsn, schema="reports", package="insightdesk.reports", declare=declare_reports_queues
    )
    prefix = f"t{uuid.uuid4().hex[:8]}_"
    async with await psycopg.AsyncConnection.connect(db_dsn, autocommit=True) as owner:
        made = await ensure_roles(owner, prefix=prefix, passwords={})
        again = await ensure_roles(owner, prefix=prefix, passwords={})  # idempotent
        assert made == again
    try:
        yield {name.removeprefix(prefix): as_role(db_dsn, name) for name in made}
    finally:
        async with await psycopg.AsyncConnection.connect(db_dsn, autocommit=True) as owner:
            for name in made:
                await owner.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
                await owner.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


async def denied(dsn: str, statement: str) -> bool:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        try:
            await conn.execute(statement.encode())
        except psycopg.errors.InsufficientPrivilege:
            return True
    return False


async def test_the_email_role_cannot_read_tickets_users(roles: dict[str, str]) -> None:
    assert await denied(roles["email"], "SELECT * FROM tickets.users")
    assert not await denied(roles["email"], "SELECT count(*) FROM email.delivery_log")


async def test_the_tickets_role_cannot_touch_email(roles: dict[str, str]) -> None:
    assert await denied(roles["tickets"], "SELECT * FROM email.delivery_log")
    assert await denied(roles["tickets"], "DELETE FROM email.delivery_log")
    assert not await denied(roles["tickets"], "SELECT count(*) FROM tickets.users")


async def test_the_sla_and_reports_roles_reach_their_own_schema_only(
    roles: dict[str, str],
) -> None:
    assert not await denied(roles["sla"], "SELECT count(*) FROM sla.tickets")
    assert not await denied(roles["reports"], "SELECT count(*) FROM reports.users")
    for role in ("sla", "reports", "scheduler"):
        assert await denied(roles[role], "SELECT * FROM tickets.users")
        assert await denied(roles[role], "SELECT * FROM email.delivery_log")
    assert await denied(roles["sla"], "SELECT * FROM reports.users")
    assert await denied(roles["reports"], "SELECT * FROM sla.tickets")


async def test_no_service_role_may_change_the_schema(roles: dict[str, str]) -> None:
    for role in ("tickets", "email", "sla", "reports", "scheduler", "console"):
        assert await denied(roles[role], "CREATE SCHEMA intruder")
        assert await denied(roles[role], "DROP TABLE queue.job")


async def test_service_roles_use_the_queue_and_the_console_only_reads(
    roles: dict[str, str],
) -> None:
    async with QueueClient.connect(roles["tickets"], migrate_schema=True) as client:
        job = await client.send("email", {"to": "a@example.com"})  # up to date: no DDL
        assert job is not None
    async with QueueClient.connect(roles["email"], migrate_schema=False) as client:
        [claimed] = await client.claim("email", 1)
        assert await client.complete(claimed.id, claimed.lease)
    assert not await denied(roles["console"], "SELECT count(*) FROM queue.job")
    assert not await denied(roles["scheduler"], "DELETE FROM queue.schedule WHERE false")
    assert await denied(roles["console"], "DELETE FROM queue.job")
    assert await denied(roles["console"], "SELECT * FROM tickets.users")
