"""Exports: the file parsed back (CSV and XLSX) equals the query; the link it mails works until
it expires, is refused when tampered with; expired files are removed."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import httpx
import openpyxl
import psycopg
import pytest
from botocore.config import Config
from moto import mock_aws
from openpyxl.utils.escape import unescape

from insightdesk.reports.downloads import downloads_app
from insightdesk.reports.handlers import (
    EXPORT_HEADER,
    ReportOptions,
    export_key,
    export_report,
    remove_expired_exports,
)
from insightdesk.reports.store import PgReportStore
from insightdesk.reports.tabular import cell_text
from insightdesk.shared.clock import FakeClock
from insightdesk.shared.contracts import (
    ExportFilters,
    ExportFormat,
    ExportReport,
    ReportExportReady,
    SendEmail,
    TicketPriority,
    TicketStatus,
)
from insightdesk.shared.queue import make_pool
from insightdesk.shared.storage import LocalStorage
from insightdesk.shared.storage.s3 import S3Storage
from tests.integration.reports.seed import load_seed, make_seed

NOW = datetime(2026, 3, 30, 6, 0, tzinfo=UTC)
SECRET = b"s" * 32
OPTIONS = ReportOptions(signing_key=SECRET, public_base_url="http://reports.test")
FILTERS = ExportFilters(
    created_from=NOW - timedelta(days=10),
    created_to=NOW - timedelta(days=2),
    statuses=[TicketStatus.OPEN, TicketStatus.RESOLVED],
    priorities=[TicketPriority.HIGH, TicketPriority.URGENT, TicketPriority.NORMAL],
)


@pytest.fixture
async def setup(reports_dsn: str, tmp_path: Path) -> Any:
    seed = make_seed(3_000, now=NOW)
    async with await psycopg.AsyncConnection.connect(reports_dsn, autocommit=True) as conn:
        await load_seed(conn, seed)
    sent: list[Any] = []

    async def publish(message: Any, conn: Any) -> None:
        sent.append(message)

    pool = make_pool(reports_dsn, min_size=1, max_size=4)
    await pool.open()
    try:
        yield seed, PgReportStore(pool, publish), LocalStorage(tmp_path / "store"), sent
    finally:
        await pool.close()


async def query(dsn: str, organization_id: uuid.UUID) -> list[list[str]]:
    """The rows the export must hold, straight from the facts with the same filter."""
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cur = await conn.execute(
            "SELECT id, subject, status, priority, customer_name, customer_email, assignee_name,"
            " created_at, first_response_at, resolved_at, closed_at FROM reports.tickets"
            " WHERE organization_id = %s AND created_at >= %s AND created_at < %s"
            " AND status = ANY(%s) AND priority = ANY(%s) ORDER BY created_at, id",
            (
                organization_id,
                FILTERS.created_from,
                FILTERS.created_to,
                [s.value for s in FILTERS.statuses],
                [p.value for p in FILTERS.priorities],
            ),
        )
        return [[cell_text(v) for v in row] for row in await cur.fetchall()]


def command(seed: Any, fmt: ExportFormat, **extra: Any) -> ExportReport:
    return ExportReport(
        export_id=uuid.uuid4(),
        organization_id=seed.organization_id,
        requested_by=uuid.uuid4(),
        requester_email="ada@acme.example",
        requester_name="Ada",
        format=fmt,
        filters=FILTERS,
        **extra,
    )


async def download(storage: LocalStorage, clock: FakeClock, url: str) -> httpx.Response:
    app = downloads_app(storage, SECRET, clock.now)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://reports.test") as http:
        return await http.get(url)


async def test_a_csv_export_parsed_back_equals_the_query(setup: Any, reports_dsn: str) -> None:
    seed, store, storage, sent = setup
    cmd = command(seed, ExportFormat.CSV, csv_bom=True)
    ready = await export_report(cmd, NOW, store=store, storage=storage, options=OPTIONS)
    expected = await query(reports_dsn, seed.organization_id)
    assert len(expected) > 500
    assert ready.rows == len(expected)
    raw = await storage.read(export_key(cmd))
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert rows[0] == list(EXPORT_HEADER)
    assert rows[1:] == expected
    # the seed names some tickets "=HYPERLINK(...)": neutralised in the file
    injected = [r[1] for r in rows[1:] if "HYPERLINK" in r[1]]
    assert injected and all(s.startswith("'=") for s in injected)

    # the ready event and the mail went out together, with the same link
    event, mail = sent
    assert isinstance(event, ReportExportReady) and isinstance(mail, SendEmail)
    assert mail.template == "report-ready" and mail.to == "ada@acme.example"
    assert mail.context["download_url"] == event.download_url
    assert event.expires_at == NOW + timedelta(hours=24)

    clock = FakeClock(NOW + timedelta(hours=1))
    response = await download(storage, clock, event.download_url)
    assert response.status_code == 200
    assert response.content == raw
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"].startswith("attachment; filename=")
    assert ".csv" in response.headers["content-disposition"]


async def test_an_xlsx_export_parsed_back_equals_the_query(
    setup: Any, reports_dsn: str, tmp_path: Path
) -> None:
    seed, store, storage, _ = setup
    cmd = command(seed, ExportFormat.XLSX)
    ready = await export_report(cmd, NOW, store=store, storage=storage, options=OPTIONS)
    path = tmp_path / "back.xlsx"
    await storage.download(export_key(cmd), path)
    sheet = openpyxl.load_workbook(path, read_only=True).active
    assert sheet is not None
    rows = [
        [unescape(c) if c is not None else "" for c in row]
        for row in sheet.iter_rows(values_only=True)
    ]
    assert rows[0] == list(EXPORT_HEADER)
    assert rows[1:] == await query(reports_dsn, seed.organization_id)
    assert ready.rows == len(rows) - 1
    clock = FakeClock(NOW)
    response = await download(storage, clock, ready.download_url)
    assert response.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )


async def test_an_expired_or_tampered_link_is_refused(setup: Any) -> None:
    seed, store, storage, _ = setup
    cmd = command(seed, ExportFormat.CSV, link_ttl_hours=2)
    ready = await export_report(cmd, NOW, store=store, storage=storage, options=OPTIONS)
    clock = FakeClock(NOW + timedelta(hours=2))
    assert (await download(storage, clock, ready.download_url)).status_code == 410
    clock.set(NOW)
    token = ready.download_url.rsplit("/", 1)[1]
    payload, _, signature = token.partition(".")
    tampered = f"/downloads/{payload[:-2]}xx.{signature}"
    assert (await download(storage, clock, tampered)).status_code == 403
    assert (await download(storage, clock, f"/downloads/{payload}.AAAA")).status_code == 403
    assert (await download(storage, clock, ready.download_url)).status_code == 200


async def test_expired_export_files_are_removed_by_cleanup(setup: Any) -> None:
    seed, store, storage, _ = setup
    short = command(seed, ExportFormat.CSV, link_ttl_hours=1)
    long = command(seed, ExportFormat.CSV, link_ttl_hours=72)
    for cmd in (short, long):
        await export_report(cmd, NOW, store=store, storage=storage, options=OPTIONS)
    later = NOW + timedelta(hours=2)
    assert await remove_expired_exports(later, store=store, storage=storage) == 1
    assert not await storage.exists(export_key(short))
    assert await storage.exists(export_key(long))
    assert await remove_expired_exports(later, store=store, storage=storage) == 0
    response = await download(storage, FakeClock(NOW), "/downloads/x.y")
    assert response.status_code == 403


async def test_an_export_to_s3_mails_a_presigned_link(setup: Any) -> None:
    seed, store, _, sent = setup
    with mock_aws():
        client = boto3.client(
            "s3",
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # moto's fake accepts any
            config=Config(signature_version="s3v4"),
        )
        client.create_bucket(Bucket="files")
        storage = S3Storage(client, "files")
        cmd = command(seed, ExportFormat.CSV, link_ttl_hours=48)
        ready = await export_report(cmd, NOW, store=store, storage=storage, options=OPTIONS)
        assert ready.download_url.startswith("https://files.s3.amazonaws.com/exports/")
        assert "X-Amz-Expires=172800" in ready.download_url
        assert (await storage.read(export_key(cmd))).count(b"\r\n") == ready.rows + 1
    assert sent[-1].context["download_url"] == ready.download_url  # the mailed link
