"""``POST /reports/exports`` records the request and sends ``ExportReport`` in one transaction;
``GET /reports/exports/{id}`` shows the outcome the reports service's events set."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest

from insightdesk.shared.contracts import ExportReport, ReportExportFailed, ReportExportReady
from insightdesk.shared.queue import QueueClient, make_pool
from insightdesk.tickets.export_outcomes import EXPORTS_QUEUE, record_export_outcome

from .desk import Probes, add_user, bootstrap

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


async def test_an_agent_requests_an_export_and_the_command_is_queued(
    http: httpx.AsyncClient, probes: Probes, client: QueueClient
) -> None:
    org = await bootstrap(http)
    agent = await add_user(http, org, "Arne", "agent")
    response = await http.post(
        "/reports/exports",
        json={
            "format": "xlsx",
            "created_from": "2026-02-01T00:00:00Z",
            "created_to": "2026-03-01T00:00:00Z",
            "statuses": ["open", "pending"],
            "link_ttl_hours": 48,
        },
        headers=agent.auth,
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["state"] == "requested"
    jobs = await client.find_jobs(ExportReport.queue, limit=10)
    assert len(jobs) == 1
    command = ExportReport.model_validate(jobs[0].data)
    assert str(command.export_id) == body["id"]
    assert str(command.organization_id) == org.id
    assert command.requester_email == agent.email
    assert command.format.value == "xlsx"
    assert [s.value for s in command.filters.statuses] == ["open", "pending"]
    assert command.link_ttl_hours == 48

    shown = await http.get(f"/reports/exports/{body['id']}", headers=agent.auth)
    assert shown.status_code == 200
    assert shown.json()["state"] == "requested"


async def test_customers_cannot_export_and_bad_filters_are_refused(
    http: httpx.AsyncClient, probes: Probes, client: QueueClient
) -> None:
    org = await bootstrap(http)
    customer = await add_user(http, org, "Carla")
    response = await http.post("/reports/exports", json={}, headers=customer.auth)
    assert response.status_code == 403
    bad = await http.post(
        "/reports/exports",
        json={"created_from": "2026-03-01T00:00:00Z", "created_to": "2026-02-01T00:00:00Z"},
        headers=org.admin.auth,
    )
    assert bad.status_code == 422
    for wrong in ({"format": "pdf"}, {"link_ttl_hours": 500}, {"created_from": "2026-03-01"}):
        assert (
            await http.post("/reports/exports", json=wrong, headers=org.admin.auth)
        ).status_code == 422, wrong
    assert await client.find_jobs(ExportReport.queue, limit=10) == []


async def test_the_outcome_events_set_the_state_shown(
    http: httpx.AsyncClient, probes: Probes, tickets_dsn: str, client: QueueClient
) -> None:
    org = await bootstrap(http)
    made = await http.post("/reports/exports", json={"format": "csv"}, headers=org.admin.auth)
    export_id = uuid.UUID(made.json()["id"])
    other = await http.post("/reports/exports", json={}, headers=org.admin.auth)
    other_id = uuid.UUID(other.json()["id"])
    assert {name for name, _ in await client.subscriptions() if _ == EXPORTS_QUEUE} == {
        "report.export_ready",
        "report.export_failed",
    }
    ready = ReportExportReady(
        occurred_at=NOW,
        export_id=export_id,
        organization_id=uuid.UUID(org.id),
        rows=12,
        size_bytes=345,
        download_url="https://files.example/x?sig=1",
        expires_at=NOW + timedelta(hours=24),
    )
    failed = ReportExportFailed(
        occurred_at=NOW, export_id=other_id, organization_id=uuid.UUID(org.id), error="disk full"
    )
    pool = make_pool(tickets_dsn, min_size=1, max_size=2)
    await pool.open()
    try:
        assert await record_export_outcome(ready, pool=pool)
        assert await record_export_outcome(ready, pool=pool)  # twice: same values
        assert await record_export_outcome(failed, pool=pool)
        stranger = failed.model_copy(update={"organization_id": uuid.uuid4()})
        assert not await record_export_outcome(stranger, pool=pool)
    finally:
        await pool.close()
    shown = (await http.get(f"/reports/exports/{export_id}", headers=org.admin.auth)).json()
    assert (shown["state"], shown["rows"], shown["download_url"]) == (
        "ready",
        12,
        "https://files.example/x?sig=1",
    )
    failed_shown = (await http.get(f"/reports/exports/{other_id}", headers=org.admin.auth)).json()
    assert (failed_shown["state"], failed_shown["error"]) == ("failed", "disk full")


async def test_another_organizations_export_is_not_found(
    http: httpx.AsyncClient, probes: Probes
) -> None:
    acme = await bootstrap(http)
    globex = await bootstrap(http, "Globex", "Gus")
    made = await http.post("/reports/exports", json={}, headers=acme.admin.auth)
    response = await http.get(f"/reports/exports/{made.json()['id']}", headers=globex.admin.auth)
    assert response.status_code == 404


async def test_a_failed_request_leaves_neither_row_nor_command(
    http: httpx.AsyncClient, probes: Probes, client: QueueClient, tickets_dsn: str
) -> None:
    org = await bootstrap(http)
    async with await psycopg.AsyncConnection.connect(tickets_dsn, autocommit=True) as conn:
        # a trigger makes the insert fail after the command was sent in the same transaction
        await conn.execute(
            "CREATE FUNCTION tickets.refuse() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'refused'; END $$"
        )
        await conn.execute(
            "CREATE CONSTRAINT TRIGGER refuse AFTER INSERT ON tickets.exports "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION tickets.refuse()"
        )
    with pytest.raises(Exception, match="refused"):
        await http.post("/reports/exports", json={}, headers=org.admin.auth)
    assert await client.find_jobs(ExportReport.queue, limit=10) == []
    async with await psycopg.AsyncConnection.connect(tickets_dsn) as conn:
        cur = await conn.execute("SELECT count(*) FROM tickets.exports")
        assert await cur.fetchone() == (0,)
