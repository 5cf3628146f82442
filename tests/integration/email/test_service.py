"""The email subscriber against real PostgreSQL, delivering into the file sink: one ``.eml`` per
idempotency key, permanent errors dead-lettered without retries, the log and the events."""

from __future__ import annotations

import email
import uuid
from collections.abc import AsyncIterator
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import psycopg
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from insightdesk.email.app import build_broker, pg_delivery_log
from insightdesk.email.errors import TransientDeliveryError
from insightdesk.email.messages import DeliveryReceipt, OutgoingEmail
from insightdesk.email.providers.file_sink import FileSinkProvider
from insightdesk.email.settings import EmailSettings
from insightdesk.shared.contracts import SendEmail
from insightdesk.shared.queue import JobState, QueueClient
from insightdesk.shared.queue.broker import PgBroker

from ..helpers import wait_for_state, wait_until

WELCOME = SendEmail(
    to="ada@example.com",
    template="welcome",
    context={"name": "Ada", "recipient_name": "Ada", "organization_name": "Acme"},
    idempotency_key="user.registered/ada",
)


class CountingFileSink(FileSinkProvider):
    """The real file sink, counting its sends (and failing the first ones when told to)."""

    def __init__(self, outbox: Path, failures: int = 0) -> None:
        super().__init__(outbox)
        self.sends = 0
        self.failures = failures

    async def send(self, message: OutgoingEmail, idempotency_key: str) -> DeliveryReceipt:
        self.sends += 1
        if self.failures:
            self.failures -= 1
            raise TransientDeliveryError("provider hiccup", retry_after=0.1)
        return await super().send(message, idempotency_key)


@pytest.fixture
def outbox(tmp_path: Path) -> Path:
    return tmp_path / "mail"


@pytest.fixture
def sink(outbox: Path) -> CountingFileSink:
    return CountingFileSink(outbox)


@pytest.fixture
def tracing() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


@pytest.fixture
async def broker(
    email_dsn: str,
    outbox: Path,
    sink: CountingFileSink,
    tracing: tuple[TracerProvider, InMemorySpanExporter],
    email_pool: AsyncConnectionPool[Any],
) -> AsyncIterator[PgBroker]:
    settings = EmailSettings(
        database_url=email_dsn,
        from_address="InsightDesk <no-reply@desk.example>",
        outbox_dir=outbox,
        worker_concurrency=4,
    )
    broker = build_broker(
        settings,
        provider=sink,
        delivery_log=pg_delivery_log(email_pool),
        tracer_provider=tracing[0],
    )
    await broker.start()
    yield broker
    await broker.stop()


def eml_files(outbox: Path) -> list[Path]:
    return sorted(outbox.glob("*.eml")) if outbox.exists() else []


def outbox_names(outbox: Path) -> list[str]:
    return sorted(p.name for p in outbox.iterdir())


def read_mail(path: Path) -> EmailMessage:
    parsed = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


async def log_rows(dsn: str) -> list[dict[str, Any]]:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute("SELECT * FROM email.delivery_log ORDER BY id")
        return await cur.fetchall()


async def test_a_send_email_lands_as_exactly_one_eml_file_with_its_trace(
    broker: PgBroker,
    client: QueueClient,
    email_dsn: str,
    outbox: Path,
    tracing: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    tracer_provider, exporter = tracing
    with tracer_provider.get_tracer("http").start_as_current_span("POST /users") as request:
        job_id = await broker.publish(WELCOME, "email")
    assert job_id is not None
    await wait_for_state(client, job_id, JobState.COMPLETED)
    trace_id = f"{request.get_span_context().trace_id:032x}"

    [eml] = eml_files(outbox)
    assert outbox_names(outbox) == [eml.name]  # no temporary file left
    mail = read_mail(eml)
    assert mail["To"] == "ada@example.com" and mail["Subject"] == "Welcome to Acme on InsightDesk"
    assert mail["X-InsightDesk-Idempotency-Key"] == "user.registered/ada"
    assert mail["X-Trace-Id"] == trace_id and mail["Message-ID"].endswith("@desk.example>")
    assert {p.get_content_type() for p in mail.iter_parts()} == {"text/plain", "text/html"}

    [row] = await log_rows(email_dsn)
    assert row["status"] == "delivered" and row["trace_id"] == trace_id
    assert row["idempotency_key"] == "user.registered/ada" and row["attempt"] == 1
    assert row["job_id"] == job_id and row["provider"] == "file"
    assert row["provider_message_id"] == eml.name and row["message_id"] == mail["Message-ID"]
    info = await client.get_job(job_id)
    assert info.output["status"] == "delivered"
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert spans["email process"].context.trace_id == request.get_span_context().trace_id


async def test_the_same_idempotency_key_twice_is_delivered_once(
    broker: PgBroker, client: QueueClient, email_dsn: str, outbox: Path, sink: CountingFileSink
) -> None:
    first = await broker.publish(WELCOME, "email")
    assert first is not None
    await wait_for_state(client, first, JobState.COMPLETED)
    second = await broker.publish(WELCOME, "email")
    assert second is not None
    await wait_for_state(client, second, JobState.COMPLETED)
    assert sink.sends == 1 and len(eml_files(outbox)) == 1
    assert (await client.get_job(second)).output["status"] == "duplicate"
    assert len(await log_rows(email_dsn)) == 1


async def test_an_unknown_template_ends_failed_in_email_dead_without_retries(
    broker: PgBroker, client: QueueClient, email_dsn: str, outbox: Path, sink: CountingFileSink
) -> None:
    await client.create_queue("email-events")
    await client.subscribe("email.failed", "email-events")
    command = WELCOME.model_copy(update={"template": "password-reset", "idempotency_key": "pr/1"})
    job_id = await broker.publish(command, "email")
    assert job_id is not None
    await wait_for_state(client, job_id, JobState.FAILED)
    info = await client.get_job(job_id)
    assert info.retry_count == 0
    assert "unknown email template 'password-reset'" in info.output["message"]
    [letter] = await client.find_jobs("email-dead")
    assert letter.data["template"] == "password-reset"
    assert sink.sends == 0 and eml_files(outbox) == []
    [row] = await log_rows(email_dsn)
    assert row["status"] == "failed" and "password-reset" in row["error"]
    [event] = await client.find_jobs("email-events")
    assert event.data["idempotency_key"] == "pr/1" and "password-reset" in event.data["error"]


async def test_a_retried_job_delivers_once_and_logs_its_attempt(
    email_dsn: str, client: QueueClient, outbox: Path, email_pool: AsyncConnectionPool[Any]
) -> None:
    flaky = CountingFileSink(outbox, failures=1)
    settings = EmailSettings(database_url=email_dsn, outbox_dir=outbox)
    broker = build_broker(settings, provider=flaky, delivery_log=pg_delivery_log(email_pool))
    await client.create_queue("email-events")
    await client.subscribe("email.delivered", "email-events")
    try:
        await broker.start()
        job_id = await broker.publish(WELCOME, "email")
        assert job_id is not None
        await wait_for_state(client, job_id, JobState.COMPLETED)
    finally:
        await broker.stop()
    assert flaky.sends == 2 and len(eml_files(outbox)) == 1
    [row] = await log_rows(email_dsn)
    assert row["status"] == "delivered" and row["attempt"] == 2
    [event] = await client.find_jobs("email-events")
    assert event.data["idempotency_key"] == WELCOME.idempotency_key
    assert event.data["provider"] == "file"


async def test_many_mails_each_land_once(
    broker: PgBroker, client: QueueClient, outbox: Path
) -> None:
    keys = [f"bulk/{uuid.uuid4()}" for _ in range(20)]
    for key in keys:
        await broker.publish(WELCOME.model_copy(update={"idempotency_key": key}), "email")

    async def all_landed() -> bool:
        return len(eml_files(outbox)) == len(keys)

    await wait_until(all_landed, timeout=20)
    stored = {read_mail(p)["X-InsightDesk-Idempotency-Key"] for p in eml_files(outbox)}
    assert stored == set(keys)
