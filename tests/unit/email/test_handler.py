"""The ``email`` subscriber in memory (``TestPgBroker``): what each ending does to the job.

Jobs are run the way the engine's worker runs them (:meth:`PgSubscriber.consume_job`): a return
completes the job, ``Reject`` dead-letters it at once, ``RetryLater`` retries it after a delay,
``Snooze`` postpones it without using an attempt, and any other error is a failed attempt that
the queue retries with its backoff.
"""

from __future__ import annotations

import email
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import policy
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from insightdesk.email.app import build_broker
from insightdesk.email.database import DEAD_LETTER_QUEUE, EMAIL_QUEUE_OPTIONS
from insightdesk.email.delivery import DeliveryRequest
from insightdesk.email.errors import PermanentDeliveryError, TransientDeliveryError
from insightdesk.email.messages import IDEMPOTENCY_HEADER, TRACE_HEADER, message_id_for
from insightdesk.email.settings import EmailSettings
from insightdesk.shared.contracts import (
    EmailDelivered,
    EmailFailed,
    MaintenanceCleanupRequested,
    SendEmail,
)
from insightdesk.shared.queue import Job, JobOptions, Reject, RetryLater, Snooze
from insightdesk.shared.queue.broker import PgBroker, PgSubscriber, TestPgBroker
from insightdesk.shared.queue.broker.testing import fake_job

from .fakes import MemoryDeliveryLog, RecordingProvider

SETTINGS = EmailSettings(
    database_url="postgresql://unused/db",
    from_address="InsightDesk <no-reply@desk.example>",
    provider="file",
)
WELCOME = SendEmail(
    to="ada@example.com",
    template="welcome",
    context={"name": "Ada", "recipient_name": "Ada", "organization_name": "Acme"},
    idempotency_key="user.registered/ada",
)


@dataclass
class Service:
    broker: PgBroker
    provider: RecordingProvider
    log: MemoryDeliveryLog

    @property
    def subscriber(self) -> PgSubscriber:
        [sub] = [
            s for s in self.broker.subscribers if isinstance(s, PgSubscriber) and s.queue == "email"
        ]
        return sub

    async def run(self, body: Any, *, retry_count: int = 0, job_id: uuid.UUID | None = None) -> Any:
        """Run one job carrying ``body`` like the worker would; returns its output."""
        data = json.loads(body.model_dump_json()) if isinstance(body, SendEmail) else body
        job: Job = fake_job("email", data, JobOptions(retry_limit=EMAIL_QUEUE_OPTIONS.retry_limit))
        job.retry_count = retry_count
        if job_id is not None:
            job.id = job_id
        return await self.subscriber.consume_job(job)


def make_service(*errors: Exception, tracer_provider: TracerProvider | None = None) -> Service:
    provider = RecordingProvider(*errors)
    log = MemoryDeliveryLog()
    broker = build_broker(
        SETTINGS, provider=provider, delivery_log=log, tracer_provider=tracer_provider
    )
    return Service(broker, provider, log)


@pytest.fixture
async def service() -> AsyncIterator[Service]:
    svc = make_service()
    async with TestPgBroker(svc.broker):
        yield svc


async def test_the_subscriber_declares_the_email_queue_with_its_retry_policy() -> None:
    svc = make_service()
    options = svc.subscriber.queue_options
    assert svc.subscriber.queue == "email"
    assert options == EMAIL_QUEUE_OPTIONS
    assert options is not None and options.dead_letter == DEAD_LETTER_QUEUE == "email-dead"
    assert (options.retry_limit, options.retry_delay, options.retry_backoff) == (5, 5.0, True)
    assert options.retry_delay_max == 600.0
    assert svc.subscriber.concurrency == SETTINGS.worker_concurrency


async def test_a_published_send_email_is_rendered_and_delivered(service: Service) -> None:
    async with TestPgBroker(service.broker) as br:
        await br.publish(WELCOME, "email")
    [(mail, key)] = service.provider.sent
    assert key == "user.registered/ada"
    assert mail.to == "ada@example.com" and mail.sender == "InsightDesk <no-reply@desk.example>"
    assert mail.subject == "Welcome to Acme on InsightDesk"
    assert mail.message_id == message_id_for(key, "desk.example")
    parsed = email.message_from_bytes(mail.as_bytes(), policy=policy.default)
    assert parsed["Message-ID"] == mail.message_id
    assert parsed[IDEMPOTENCY_HEADER] == key
    row = service.log.rows[key]
    assert row.status == "delivered" and row.provider_message_id == "rec-1"
    [event] = service.log.events
    assert isinstance(event, EmailDelivered)
    assert (event.idempotency_key, event.to, event.template) == (key, mail.to, "welcome")
    assert event.provider == "recording" and event.provider_message_id == "rec-1"


async def test_the_job_output_says_what_happened(service: Service) -> None:
    output = await service.run(WELCOME)
    assert output["status"] == "delivered" and output["provider_message_id"] == "rec-1"


async def test_the_same_idempotency_key_is_delivered_only_once(service: Service) -> None:
    first = await service.run(WELCOME)
    second = await service.run(WELCOME)  # another job, same key
    assert len(service.provider.sent) == 1
    assert first["status"] == "delivered" and second["status"] == "duplicate"
    assert second["provider_message_id"] == "rec-1"
    assert len(service.log.events) == 1


async def test_an_unknown_template_rejects_the_job_naming_the_template(service: Service) -> None:
    command = WELCOME.model_copy(update={"template": "password-reset"})
    with pytest.raises(Reject, match="unknown email template 'password-reset'"):
        await service.run(command)
    assert service.provider.sent == []
    assert service.log.rows[command.idempotency_key].status == "failed"
    [event] = service.log.events
    assert isinstance(event, EmailFailed) and "password-reset" in event.error


async def test_a_context_missing_a_key_rejects_the_job_naming_it(service: Service) -> None:
    command = WELCOME.model_copy(update={"context": {"name": "Ada", "recipient_name": "Ada"}})
    with pytest.raises(Reject, match="missing organization_name"):
        await service.run(command)
    assert service.provider.sent == []
    assert service.log.rows[command.idempotency_key].status == "failed"
    [event] = service.log.events
    assert isinstance(event, EmailFailed) and "missing organization_name" in event.error


async def test_a_context_with_a_wrong_value_type_rejects_the_job(service: Service) -> None:
    context = {**WELCOME.context, "organization_name": ["Acme"]}
    command = WELCOME.model_copy(update={"context": context})
    with pytest.raises(Reject, match="invalid organization_name"):
        await service.run(command)
    assert service.provider.sent == []


async def test_a_malformed_command_is_rejected_not_retried(service: Service) -> None:
    with pytest.raises(Reject, match="malformed SendEmail"):
        await service.run({"to": "not an address", "template": "welcome", "idempotency_key": "k"})


async def test_a_rate_limit_retries_after_the_providers_delay() -> None:
    svc = make_service(TransientDeliveryError("429 slow down", retry_after=17))
    async with TestPgBroker(svc.broker):
        with pytest.raises(RetryLater) as info:
            await svc.run(WELCOME)
        assert info.value.delay == 17
        row = svc.log.rows[WELCOME.idempotency_key]
        assert row.status == "sending" and row.error == "429 slow down"  # released, not failed
        assert svc.log.events == []
        assert (await svc.run(WELCOME, retry_count=1))["status"] == "delivered"
    assert len(svc.provider.sent) == 1


async def test_a_server_error_is_an_ordinary_failed_attempt_for_the_queue_backoff() -> None:
    svc = make_service(TransientDeliveryError("Resend answered 500"))
    async with TestPgBroker(svc.broker):
        with pytest.raises(TransientDeliveryError, match="500"):
            await svc.run(WELCOME)
    assert svc.log.events == []


async def test_a_provider_refusal_rejects_with_the_providers_error() -> None:
    svc = make_service(PermanentDeliveryError("Resend answered 422 validation_error: bad to"))
    async with TestPgBroker(svc.broker):
        with pytest.raises(Reject, match="422 validation_error: bad to"):
            await svc.run(WELCOME)
    assert svc.log.rows[WELCOME.idempotency_key].status == "failed"
    [event] = svc.log.events
    assert isinstance(event, EmailFailed) and "bad to" in event.error


async def test_the_last_failed_attempt_records_the_failure_and_announces_it() -> None:
    svc = make_service(TransientDeliveryError("still down"))
    async with TestPgBroker(svc.broker):
        with pytest.raises(TransientDeliveryError):
            await svc.run(WELCOME, retry_count=EMAIL_QUEUE_OPTIONS.retry_limit)
    assert svc.log.rows[WELCOME.idempotency_key].status == "failed"
    [event] = svc.log.events
    assert isinstance(event, EmailFailed) and event.error == "still down"


async def _claim_for(log: MemoryDeliveryLog, job_id: uuid.UUID, lease: float = 60.0) -> None:
    await log.claim(
        DeliveryRequest(
            idempotency_key=WELCOME.idempotency_key,
            recipient=WELCOME.to,
            template=WELCOME.template,
            locale="en",
            provider="recording",
            message_id="<m@desk.example>",
            trace_id=None,
            job_id=job_id,
            attempt=1,
            lease_seconds=lease,
        )
    )


async def test_a_key_held_by_another_job_postpones_without_using_an_attempt(
    service: Service,
) -> None:
    await _claim_for(service.log, uuid.uuid4(), lease=60)
    with pytest.raises(Snooze) as info:
        await service.run(WELCOME)
    assert 55 <= info.value.delay <= 60 and not info.value.count_attempt
    assert service.provider.sent == []


async def test_a_retry_of_the_job_that_crashed_mid_send_takes_its_claim_back(
    service: Service,
) -> None:
    job_id = uuid.uuid4()
    await _claim_for(service.log, job_id, lease=600)  # the first attempt died holding the key
    output = await service.run(WELCOME, retry_count=1, job_id=job_id)
    assert output["status"] == "delivered" and len(service.provider.sent) == 1


async def test_the_trace_of_the_publishing_request_reaches_the_mail() -> None:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    svc = make_service(tracer_provider=tracer_provider)
    async with TestPgBroker(svc.broker) as br:
        with tracer_provider.get_tracer("http").start_as_current_span("POST /tickets") as span:
            await br.publish(WELCOME, "email")
    trace_id = f"{span.get_span_context().trace_id:032x}"
    [(mail, _)] = svc.provider.sent
    assert mail.headers[TRACE_HEADER] == trace_id
    assert svc.log.rows[WELCOME.idempotency_key].request.trace_id == trace_id
    names = {s.name for s in exporter.get_finished_spans()}
    assert "email process" in names


async def test_the_cleanup_event_purges_old_finished_delivery_log_rows() -> None:
    svc = make_service()
    old = datetime.now(UTC) - timedelta(days=91)
    async with TestPgBroker(svc.broker) as br:
        await br.publish(WELCOME, "email")
        await br.publish(WELCOME.model_copy(update={"idempotency_key": "second"}), "email")
        [first_key, _] = list(svc.log.rows)
        svc.log.rows[first_key].updated_at = old
        await br.publish(
            MaintenanceCleanupRequested(occurred_at=datetime.now(UTC)), "email-maintenance"
        )
    assert list(svc.log.rows) == ["second"]
    [cleanup] = [
        s for s in svc.broker.subscribers if isinstance(s, PgSubscriber) and s.queue != "email"
    ]
    assert (
        cleanup.queue == "email-maintenance" and "maintenance.cleanup_requested" in cleanup.events
    )
