"""Pure mappings of the broker: bodies to stored JSON and back, decisions to engine outcomes,
the AsyncAPI document, and that every private FastStream import stays in one module."""

from __future__ import annotations

import ast
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from faststream import AckPolicy, AsyncAPI
from faststream.exceptions import AckMessage, NackMessage, RejectMessage
from faststream.response import Response
from pydantic import BaseModel

from insightdesk.shared.queue import Job, Reject, RetryLater, Snooze
from insightdesk.shared.queue.broker import JobOptions, PgBroker
from insightdesk.shared.queue.broker.bodies import from_stored, stored_bytes, to_output, to_stored
from insightdesk.shared.queue.broker.command import merge_options
from insightdesk.shared.queue.broker.message import Decision, JobDelivery, SnoozeMessage
from insightdesk.shared.queue.broker.subscriber import Nacked, settle

BROKER_PACKAGE = (
    Path(__file__).resolve().parents[2] / "libs/shared/src/insightdesk/shared/queue/broker"
)


class Model(BaseModel):
    n: int


def _job(data: Any = None, headers: dict[str, Any] | None = None) -> Job:
    now = datetime.now(UTC)
    return Job(
        uuid.uuid4(), "q", uuid.uuid4(), data, headers or {}, 0, 2, 900.0, None, 0, None, now, now
    )


@pytest.mark.parametrize(
    ("body", "delivered"),
    [
        ({"a": [1, 2]}, {"a": [1, 2]}),
        ("text", "text"),
        (b"\x00\xff", b"\x00\xff"),
        (b'{"json": true}', {"json": True}),
        (None, b""),
        (7, 7),
        ((1, 2), [1, 2]),
        (uuid.UUID(int=1), "00000000-0000-0000-0000-000000000001"),
    ],
)
def test_bodies_survive_storage(body: Any, delivered: Any) -> None:
    stored, headers = to_stored(body)
    assert from_stored(stored, headers) == delivered


def test_models_are_stored_by_the_engine_and_bytes_are_made_on_demand() -> None:
    stored, headers = to_stored(Model(n=1))
    assert stored == Model(n=1) and headers == {}
    assert stored_bytes({"n": 1}, {}) == b'{"n":1}'
    assert stored_bytes("hé", {"content-type": "text/plain"}) == "hé".encode()


def test_outputs_become_json_values() -> None:
    assert to_output(None) is None
    assert to_output(Model(n=2)) == Model(n=2)
    assert to_output({"at": datetime(2026, 1, 1, tzinfo=UTC)}) == {"at": "2026-01-01T00:00:00Z"}
    assert to_output(b'{"x": 1}') == {"x": 1}


def _settled(decision: Decision | None, error: Exception | None = None, **extra: Any) -> Any:
    delivery = JobDelivery(_job())
    delivery.decision = decision
    for key, value in extra.items():
        setattr(delivery, key, value)
    return settle(delivery, Response({"ok": 1}), error)


def test_decisions_map_onto_engine_outcomes() -> None:
    assert _settled(Decision.ACK) == {"ok": 1}
    assert _settled(None) == {"ok": 1}  # manual policy, nothing settled, no error
    with pytest.raises(Nacked):
        _settled(Decision.NACK)
    with pytest.raises(KeyError):
        _settled(Decision.NACK, KeyError("x"))
    with pytest.raises(RetryLater) as later:
        _settled(Decision.NACK, delay=5.0)
    assert later.value.delay == 5.0
    with pytest.raises(Snooze) as snooze:
        _settled(Decision.NACK, delay=2.0, count_attempt=False)
    assert snooze.value.delay == 2.0 and not snooze.value.count_attempt
    with pytest.raises(Reject, match="bad"):
        _settled(Decision.REJECT, reason="bad")
    with pytest.raises(Snooze):  # an engine outcome raised by the handler wins
        _settled(Decision.NACK, Snooze(1))


def test_raised_verdicts_and_the_ack_policy_decide_for_errors() -> None:
    def run(error: Exception, policy: AckPolicy = AckPolicy.NACK_ON_ERROR) -> Any:
        return settle(JobDelivery(_job()), None, error, policy)

    assert run(AckMessage()) is None
    with pytest.raises(RetryLater) as later:
        run(NackMessage(delay=3))
    assert later.value.delay == 3
    with pytest.raises(Nacked):
        run(NackMessage())
    with pytest.raises(Snooze):
        run(SnoozeMessage(1))
    with pytest.raises(Reject, match="nope"):
        run(RejectMessage(reason="nope"))
    assert run(ValueError("x"), AckPolicy.ACK) is None
    assert run(ValueError("x"), AckPolicy.ACK_FIRST) is None
    with pytest.raises(Reject, match="ValueError"):
        run(ValueError("x"), AckPolicy.REJECT_ON_ERROR)
    with pytest.raises(ValueError, match="x"):
        run(ValueError("x"), AckPolicy.MANUAL)


def test_call_options_override_publisher_defaults_field_by_field() -> None:
    base = JobOptions(priority=1, retry_limit=3, headers={"a": "1"})
    merged = merge_options(base, JobOptions(priority=5, headers={"b": "2"}))
    assert merged is not None
    assert (merged.priority, merged.retry_limit, merged.headers) == (5, 3, {"a": "1", "b": "2"})
    assert merge_options(None, base) is base and merge_options(base, None) is base


def test_asyncapi_document_lists_queues_events_and_payloads() -> None:
    broker = PgBroker("postgresql://app:secret@db.internal:5433/desk")

    @broker.publisher("email")
    @broker.subscriber("tickets", events=["ticket.created"])
    async def handle(body: Model) -> Model:
        return body

    doc = AsyncAPI(broker, title="tickets").to_specification().to_jsonable()
    text = repr(doc)
    assert "secret" not in text
    assert doc["servers"]["development"]["host"] == "app@db.internal:5433"
    assert {c["address"] for c in doc["channels"].values()} == {"tickets", "email"}
    assert "ticket.created" in text and "Model" in text


def test_faststream_private_imports_live_in_one_module() -> None:
    importers = {
        path.name
        for path in BROKER_PACKAGE.glob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom)
        and (node.module or "").startswith("faststream._internal")
    }
    assert importers == {"_faststream.py"}
