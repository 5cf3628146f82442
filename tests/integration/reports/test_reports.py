"""Digests and weekly reports end to end over the real store: one mail per agent, sent once per
(organization, period) however often the job runs, rendered by the email service's templates
(weekly charts inline, read from storage)."""

from __future__ import annotations

import email
import uuid
from datetime import UTC, date, datetime
from email import policy
from pathlib import Path
from typing import Any

import psycopg
import pytest

from insightdesk.email.handlers import load_files
from insightdesk.email.messages import compose
from insightdesk.email.templates import TemplateRenderer
from insightdesk.reports.digest import DAILY, WEEKLY, ReportPlan
from insightdesk.reports.handlers import ReportOptions, plan_reports, send_report
from insightdesk.reports.store import PgReportStore
from insightdesk.shared.contracts import (
    TEMPLATE_CONTEXTS,
    DailyDigestContext,
    Event,
    SendEmail,
    WeeklyReportContext,
)
from insightdesk.shared.queue import make_pool
from insightdesk.shared.storage import LocalStorage
from tests.integration.reports.reference import reference
from tests.integration.reports.seed import AGENTS, load_seed, make_seed

NOW = datetime(2026, 3, 30, 6, 0, tzinfo=UTC)  # Monday 08:00 in Berlin
OPTIONS = ReportOptions(signing_key=b"k" * 32)


class Recorder:
    """What the store publishes, as if into the queue."""

    def __init__(self) -> None:
        self.sent: list[SendEmail | Event] = []

    async def __call__(self, message: SendEmail | Event, conn: Any) -> None:
        self.sent.append(message)

    @property
    def mails(self) -> list[SendEmail]:
        return [m for m in self.sent if isinstance(m, SendEmail)]


@pytest.fixture
async def seeded(reports_dsn: str) -> Any:
    seed = make_seed(4_000, now=NOW, time_zone="Europe/Berlin")
    async with await psycopg.AsyncConnection.connect(reports_dsn, autocommit=True) as conn:
        await load_seed(conn, seed)
    return seed


@pytest.fixture
async def publishing(reports_dsn: str) -> Any:
    recorder = Recorder()
    pool = make_pool(reports_dsn, min_size=1, max_size=4)
    await pool.open()
    try:
        yield PgReportStore(pool, recorder), recorder
    finally:
        await pool.close()


async def test_a_digest_goes_to_every_agent_once_however_often_the_job_runs(
    seeded: Any, publishing: Any, tmp_path: Path
) -> None:
    store, recorder = publishing
    storage = LocalStorage(tmp_path)
    job = ReportPlan(DAILY, seeded.organization_id, date(2026, 3, 29))
    assert await send_report(job, NOW, store=store, storage=storage, options=OPTIONS) == "sent"
    again = await send_report(job, NOW, store=store, storage=storage, options=OPTIONS)
    assert again == "duplicate"
    mails = recorder.mails
    assert len(mails) == AGENTS
    assert len({m.to for m in mails}) == AGENTS
    assert len({m.idempotency_key for m in mails}) == AGENTS
    context = DailyDigestContext.model_validate(mails[0].context)
    span_start = datetime(2026, 3, 28, 23, 0, tzinfo=UTC)  # Berlin midnight, CET
    span_end = datetime(2026, 3, 29, 22, 0, tzinfo=UTC)  # next midnight, CEST
    expected = reference(seeded, span_start, span_end, NOW)
    assert (context.new, context.solved, context.reopened, context.closed) == (
        expected["new"],
        expected["solved"],
        expected["reopened"],
        expected["closed"],
    )
    assert [(a.name, a.open_assigned, a.replies, a.solved) for a in context.agents] == expected[
        "agents"
    ]
    renderer = TemplateRenderer()
    for locale in ("en", "de"):
        mail = renderer.render("daily-digest", mails[0].context, locale)
        assert str(expected["new"]) in mail.text
        assert "Agent 00" in mail.html


async def test_a_day_without_activity_sends_no_digest(
    seeded: Any, publishing: Any, tmp_path: Path
) -> None:
    store, recorder = publishing
    job = ReportPlan(DAILY, seeded.organization_id, date(2025, 1, 1))
    outcome = await send_report(
        job, NOW, store=store, storage=LocalStorage(tmp_path), options=OPTIONS
    )
    assert outcome == "skipped"
    assert recorder.sent == []


async def test_the_weekly_report_has_deltas_trend_and_inline_charts(
    seeded: Any, publishing: Any, tmp_path: Path
) -> None:
    store, recorder = publishing
    storage = LocalStorage(tmp_path)
    job = ReportPlan(WEEKLY, seeded.organization_id, date(2026, 3, 23))
    assert await send_report(job, NOW, store=store, storage=storage, options=OPTIONS) == "sent"
    mail = recorder.mails[0]
    context = WeeklyReportContext.model_validate(mail.context)
    this_week = reference(
        seeded, datetime(2026, 3, 22, 23, tzinfo=UTC), datetime(2026, 3, 29, 22, tzinfo=UTC), NOW
    )
    last_week = reference(
        seeded, datetime(2026, 3, 15, 23, tzinfo=UTC), datetime(2026, 3, 22, 23, tzinfo=UTC), NOW
    )
    assert context.new == this_week["new"]
    assert context.delta_new == this_week["new"] - last_week["new"]
    assert context.delta_solved == this_week["solved"] - last_week["solved"]
    assert [t.day for t in context.trend] == [date(2026, 3, 23 + i) for i in range(7)]
    assert sum(t.new for t in context.trend) == this_week["new"]
    assert {a.content_id for a in mail.attachments} == {"volume-chart", "response-chart"}
    assert all(a.inline for a in mail.attachments)

    # the email service renders it and embeds the charts it reads from storage
    rendered = TemplateRenderer().render("weekly-report", mail.context, "de")
    assert 'src="cid:volume-chart"' in rendered.html
    files = await load_files(mail, storage)
    outgoing = compose(
        rendered,
        sender="InsightDesk <no-reply@insightdesk.local>",
        to=mail.to,
        idempotency_key=mail.idempotency_key,
        message_id="<x@insightdesk.local>",
        trace_id=None,
        now=NOW,
        files=files,
    )
    parsed = email.message_from_bytes(outgoing.as_bytes(), policy=policy.default)
    images = [p for p in parsed.walk() if p.get_content_type() == "image/png"]
    assert {p["Content-ID"] for p in images} == {"<volume-chart>", "<response-chart>"}
    assert all(bytes(p.get_payload(decode=True)).startswith(b"\x89PNG") for p in images)
    related = [p for p in parsed.walk() if p.get_content_type() == "multipart/related"]
    assert len(related) == 1


async def test_a_tick_plans_one_job_per_due_organization(
    seeded: Any, publishing: Any, reports_dsn: str
) -> None:
    store, _ = publishing
    other = uuid.uuid4()
    async with await psycopg.AsyncConnection.connect(reports_dsn, autocommit=True) as conn:
        await conn.execute(
            "INSERT INTO reports.organizations (id, name, time_zone) VALUES (%s, 'NY', %s)",
            (other, "America/New_York"),
        )

    class Jobs:
        def __init__(self) -> None:
            self.plans: list[ReportPlan] = []

        async def enqueue(self, plans: Any) -> int:
            self.plans.extend(plans)
            return len(plans)

    jobs = Jobs()
    assert await plan_reports(DAILY, NOW, store=store, jobs=jobs, options=OPTIONS) == 1
    assert [p.organization_id for p in jobs.plans] == [seeded.organization_id]
    ny_eight = datetime(2026, 3, 30, 12, 0, tzinfo=UTC)
    assert await plan_reports(WEEKLY, ny_eight, store=store, jobs=jobs, options=OPTIONS) == 1
    assert jobs.plans[-1].organization_id == other
    assert jobs.plans[-1].period_start == date(2026, 3, 23)


def test_every_report_template_has_its_context_contract() -> None:
    assert {"daily-digest", "weekly-report", "report-ready"} <= set(TEMPLATE_CONTEXTS)
