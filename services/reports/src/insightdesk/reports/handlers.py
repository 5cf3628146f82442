"""The reports service's handlers: plain async functions over ports, no transport.

* :func:`record_event` — an event becomes facts, once per event key.
* :func:`plan_reports` — an hourly tick: the organizations due get one job each.
* :func:`send_report` — one organization's digest or weekly report: figures, charts, one mail
  per agent, sent once per (kind, organization, period) however often the job runs.
* :func:`export_report` — the rows into a CSV/XLSX file in storage, a signed link mailed.
* :func:`remove_expired_exports` — retention on ``maintenance.cleanup_requested``.
"""

from __future__ import annotations

import logging
import tempfile
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from insightdesk.reports.digest import (
    DAILY,
    WEEKLY,
    Figures,
    Organization,
    Period,
    ReportPlan,
    figures_context,
    plan,
    report_period,
    trend_rows,
)
from insightdesk.reports.facts import FactChange, facts_for
from insightdesk.reports.links import Download, link_ttl, sign
from insightdesk.reports.tabular import CONTENT_TYPES, open_writer
from insightdesk.shared.contracts import (
    Attachment,
    DailyDigestContext,
    Event,
    ExportFilters,
    ExportReport,
    ReportExportFailed,
    ReportExportReady,
    ReportReadyContext,
    SendEmail,
    WeeklyReportContext,
    template_context,
)
from insightdesk.shared.storage import ObjectStorage

log = logging.getLogger(__name__)
EXPORT_HEADER = (
    "ticket_id",
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


class ReportStore(Protocol):
    """What the handlers need of :class:`insightdesk.reports.store.PgReportStore`."""

    async def apply(self, change: FactChange) -> bool: ...
    async def organizations(self) -> list[Organization]: ...
    async def organization(self, organization_id: uuid.UUID) -> Organization | None: ...
    async def recipients(self, organization_id: uuid.UUID) -> list[dict[str, Any]]: ...
    async def figures(self, organization_id: uuid.UUID, span: Period, now: datetime) -> Figures: ...
    async def trend(
        self, organization_id: uuid.UUID, span: Period, time_zone: str
    ) -> list[tuple[date, int, int]]: ...
    async def response_histogram(self, organization_id: uuid.UUID, span: Period) -> list[int]: ...
    async def send_once(
        self,
        kind: str,
        organization_id: uuid.UUID,
        period_start: date,
        messages: Sequence[SendEmail | Event],
    ) -> bool: ...
    def export_rows(
        self, organization_id: uuid.UUID, filters: ExportFilters
    ) -> AsyncIterator[Sequence[Any]]: ...
    async def finish_export(
        self, record: dict[str, Any], messages: Sequence[SendEmail | Event]
    ) -> None: ...
    async def publish(self, messages: Sequence[SendEmail | Event]) -> None: ...
    async def expired_exports(
        self, now: datetime, limit: int = 500
    ) -> list[tuple[uuid.UUID, str]]: ...
    async def mark_export_deleted(self, export_id: uuid.UUID, now: datetime) -> None: ...


class ReportJobs(Protocol):
    """Enqueues per-organization report jobs (idempotently: one per plan's job id)."""

    async def enqueue(self, plans: Sequence[ReportPlan]) -> int: ...


@dataclass(frozen=True, slots=True)
class ReportOptions:
    digest_hour: int = 8
    weekly_hour: int = 8
    skip_without_activity: bool = True
    link_ttl_hours: int = 24
    public_base_url: str = "http://127.0.0.1:8005"
    signing_key: bytes = b""
    work_dir: Path | None = None


async def record_event(event: Event, *, store: ReportStore) -> bool:
    """Apply ``event`` to the facts; False when it was seen before or is not used."""
    change = facts_for(event)
    if change is None:
        return False
    return await store.apply(change)


async def plan_reports(
    kind: str, now: datetime, *, store: ReportStore, jobs: ReportJobs, options: ReportOptions
) -> int:
    """One hourly tick of ``kind``: a job per organization due now; returns how many were new."""
    hour = options.digest_hour if kind == DAILY else options.weekly_hour
    plans = plan(kind, now, await store.organizations(), hour=hour)
    return await jobs.enqueue(plans) if plans else 0


def chart_keys(org: uuid.UUID, first: date) -> tuple[str, str]:
    base = f"charts/{org}/{first.isoformat()}"
    return f"{base}/volume.png", f"{base}/response.png"


async def send_report(
    job: ReportPlan,
    now: datetime,
    *,
    store: ReportStore,
    storage: ObjectStorage,
    options: ReportOptions,
) -> str:
    """Build and send one organization's report; ``sent``, ``skipped`` (no activity or no
    recipients) or ``duplicate`` (sent before)."""
    org = await store.organization(job.organization_id)
    if org is None:
        return "skipped"
    span = report_period(job.kind, job.period_start, org.zone)
    figures = await store.figures(org.id, span, now)
    if job.kind == DAILY and options.skip_without_activity and not figures.activity:
        log.info("digest of %s for %s skipped: no activity", org.id, job.period_start)
        return "skipped"
    recipients = await store.recipients(org.id)
    if not recipients:
        return "skipped"
    base = figures_context(org, span, figures)
    attachments: list[Attachment] = []
    extra: dict[str, Any] = {}
    if job.kind == WEEKLY:
        # matplotlib is heavy to import: only weekly jobs load it, not every process start
        from insightdesk.reports import charts  # noqa: PLC0415

        previous = await store.figures(
            org.id, report_period(WEEKLY, job.period_start - timedelta(days=7), org.zone), now
        )
        trend = await store.trend(org.id, span, org.time_zone)
        histogram = await store.response_histogram(org.id, span)
        volume_key, response_key = chart_keys(org.id, job.period_start)
        await storage.put_bytes(
            volume_key,
            charts.volume_chart(
                [d for d, _, _ in trend], [n for _, n, _ in trend], [s for *_, s in trend]
            ),
            "image/png",
        )
        await storage.put_bytes(response_key, charts.response_chart(histogram), "image/png")
        attachments = [
            Attachment(
                key=volume_key,
                filename="volume.png",
                content_type="image/png",
                inline=True,
                content_id="volume-chart",
            ),
            Attachment(
                key=response_key,
                filename="response.png",
                content_type="image/png",
                inline=True,
                content_id="response-chart",
            ),
        ]
        extra = {
            "delta_new": figures.new - previous.new,
            "delta_solved": figures.solved - previous.solved,
            "delta_reopened": figures.reopened - previous.reopened,
            "delta_closed": figures.closed - previous.closed,
            "trend": trend_rows(trend),
            "volume_chart_cid": "volume-chart",
            "response_chart_cid": "response-chart",
        }
    mails: list[SendEmail | Event] = []
    for person in recipients:
        context = (
            DailyDigestContext(recipient_name=person["name"], **base)
            if job.kind == DAILY
            else WeeklyReportContext(recipient_name=person["name"], **base, **extra)
        )
        mails.append(
            SendEmail(
                to=person["email"],
                template=job.kind,
                context=template_context(context),
                idempotency_key=f"{job.kind}:{org.id}:{job.period_start}:{person['id']}",
                locale=org.locale,
                attachments=attachments,
            )
        )
    sent = await store.send_once(job.kind, org.id, job.period_start, mails)
    return "sent" if sent else "duplicate"


def export_key(command: ExportReport) -> str:
    return f"exports/{command.organization_id}/{command.export_id}.{command.format.value}"


async def export_report(
    command: ExportReport,
    now: datetime,
    *,
    store: ReportStore,
    storage: ObjectStorage,
    options: ReportOptions,
) -> ReportExportReady:
    """Stream the rows into a file, store it, record it and — in one transaction — publish
    ``report.export_ready`` and the ``report-ready`` mail with its signed link."""
    fmt = command.format.value
    key = export_key(command)
    filename = f"tickets-{now:%Y%m%d}-{str(command.export_id)[:8]}.{fmt}"
    content_type = CONTENT_TYPES[fmt]
    with tempfile.TemporaryDirectory(dir=options.work_dir, prefix="export-") as folder:
        path = Path(folder) / filename
        writer = open_writer(fmt, path, EXPORT_HEADER, bom=command.csv_bom)
        with closing(writer):
            async for row in store.export_rows(command.organization_id, command.filters):
                writer.write_row(row)
        size = await storage.put_file(key, path, content_type)
    ttl = link_ttl(command.link_ttl_hours, options.link_ttl_hours)
    expires_at = now + ttl
    url = await storage.presigned_url(
        key, expires_in=int(ttl.total_seconds()), filename=filename, content_type=content_type
    )
    if url is None:
        token = sign(options.signing_key, Download(key, filename, content_type, expires_at))
        url = f"{options.public_base_url.rstrip('/')}/downloads/{token}"
    ready = ReportExportReady(
        occurred_at=now,
        export_id=command.export_id,
        organization_id=command.organization_id,
        rows=writer.rows,
        size_bytes=size,
        download_url=url,
        expires_at=expires_at,
    )
    mail = SendEmail(
        to=command.requester_email,
        template="report-ready",
        context=template_context(
            ReportReadyContext(
                recipient_name=command.requester_name or command.requester_email,
                export_id=str(command.export_id),
                format=fmt,
                rows=writer.rows,
                download_url=url,
                expires_at=expires_at.isoformat(timespec="minutes"),
            )
        ),
        idempotency_key=f"report-ready:{command.export_id}",
        locale=command.locale,
    )
    record = {
        "export_id": command.export_id,
        "organization_id": command.organization_id,
        "storage_key": key,
        "format": fmt,
        "rows": writer.rows,
        "size_bytes": size,
        "created_at": now,
        "expires_at": expires_at,
    }
    await store.finish_export(record, [ready, mail])
    return ready


async def export_failed(
    command: ExportReport, error: str, now: datetime, *, store: ReportStore
) -> None:
    """Tell the requester's side (``report.export_failed``) that the export will not come."""
    event = ReportExportFailed(
        occurred_at=now,
        export_id=command.export_id,
        organization_id=command.organization_id,
        error=error[:500],
    )
    await store.publish([event])


async def remove_expired_exports(
    now: datetime, *, store: ReportStore, storage: ObjectStorage
) -> int:
    """Delete the export files whose links have expired; returns how many."""
    removed = 0
    while True:
        batch = await store.expired_exports(now)
        if not batch:
            return removed
        for export_id, key in batch:
            await storage.delete(key)
            await store.mark_export_deleted(export_id, now)
            removed += 1
