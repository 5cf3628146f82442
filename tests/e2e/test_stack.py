"""The whole stack as real processes (the README's first command) on one database.

A customer posts a message on a ticket over HTTP; the tickets service writes it, its event and
the notification commands in one transaction; the email service delivers the mail to the
assigned agent exactly once, and the consumer's span continues the HTTP request's trace.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

# Six service processes start (and import) at once: on a loaded 2-core machine that alone can
# take a minute or more, beyond the suite's default 120 s per test.
pytestmark = pytest.mark.timeout(360)

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


PROCESSES = 6  # tickets API, email, scheduler, tickets worker, sla, reports: base + 0..5
OPERATOR_TOKEN = "e2e-operator-token"


def _free_port_run(count: int = PROCESSES) -> int:
    for _ in range(50):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            port = int(a.getsockname()[1])
        if port + count > 65535:
            continue
        try:
            for offset in range(1, count):
                with socket.socket() as b:
                    b.bind(("127.0.0.1", port + offset))
        except OSError:
            continue
        return port
    raise RuntimeError(f"no {count} free adjacent ports")


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 480) -> None:
    # Generous: on a loaded 2-core machine (load 15) the stack took 150 s to be ready.
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=1) as http:  # one client: no TLS context built per probe
        while time.monotonic() < deadline:
            assert proc.poll() is None, "the stack exited while starting"
            try:
                if http.get(url).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
    raise AssertionError(f"{url} not ready within {timeout}s")


@pytest.fixture
def stack(db_dsn: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port = _free_port_run()
    env = {
        **os.environ,
        "DATABASE_URL": db_dsn,
        "SCHEDULER_OPERATOR_TOKEN": OPERATOR_TOKEN,
        "TICKETS_NOTIFY_WINDOW_SECONDS": "1",  # agent mails follow the notification window
    }
    log = (tmp_path / "runner.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "insightdesk.shared.runner",
            "--data-dir",
            str(tmp_path),
            "--base-port",
            str(port),
            "--grace",
            "10",
        ],
        env=env,
        stdout=log,  # a file, not a pipe nobody reads while the stack runs: it would fill up
        stderr=subprocess.STDOUT,
    )
    try:
        for offset in range(PROCESSES):
            _wait_ready(f"http://127.0.0.1:{port + offset}/readyz", proc)
        yield f"http://127.0.0.1:{port}", tmp_path
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError("the runner did not stop within 30s") from None
        finally:
            log.close()
        out = (tmp_path / "runner.log").read_bytes()
        assert proc.returncode == 0, out.decode(errors="replace")


def _mails(outbox: Path) -> list[email.message.EmailMessage]:
    found = []
    for path in sorted(outbox.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, email.message.EmailMessage)
        found.append(message)
    return found


def _agent_mails(outbox: Path) -> list[email.message.EmailMessage]:
    """The agent's ticket-update mails (not the welcome)."""
    return [
        m
        for m in _mails(outbox)
        if "agent@acme.example" in str(m["To"]) and str(m["Subject"]).startswith("Re:")
    ]


def _wait_for(found: Callable[[], list[Any]], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not found():
        assert time.monotonic() < deadline, f"{what} did not arrive within {timeout}s"
        time.sleep(0.2)


@pytest.mark.timeout(600)  # six services migrate and start first; slow on a busy machine
def test_customer_message_mails_the_agent_once_with_the_request_trace(
    stack: tuple[str, Path], db_dsn: str
) -> None:
    base, data = stack
    with httpx.Client(base_url=base, timeout=10) as http:
        created = http.post(
            "/organizations",
            json={"name": "Acme", "admin": {"email": "admin@acme.example", "name": "Ada Admin"}},
        )
        assert created.status_code == 201, created.text
        admin = {"Authorization": f"Bearer {created.json()['api_token']}"}
        users = {}
        for role, address, name in (
            ("agent", "agent@acme.example", "Alan Agent"),
            ("customer", "cleo@acme.example", "Cleo Customer"),
        ):
            made = http.post(
                "/users", json={"email": address, "name": name, "role": role}, headers=admin
            )
            assert made.status_code == 201, made.text
            users[role] = made.json()
        customer = {"Authorization": f"Bearer {users['customer']['api_token']}"}
        ticket = http.post(
            "/tickets", json={"subject": "Printer <script>x</script> on fire"}, headers=customer
        )
        assert ticket.status_code == 201, ticket.text
        ticket_id = ticket.json()["id"]
        assigned = http.put(
            f"/tickets/{ticket_id}/assignee",
            json={"assignee_id": users["agent"]["user"]["id"]},
            headers=admin,
        )
        assert assigned.status_code == 200, assigned.text
        _wait_for(lambda: _agent_mails(data / "mail"), "the assignment mail")  # window closed
        posted = http.post(
            f"/tickets/{ticket_id}/messages",
            json={"body": "Still smoking!"},
            headers={**customer, "traceparent": TRACEPARENT},
        )
        assert posted.status_code == 201, posted.text

    outbox = data / "mail"

    def new_message_mails() -> list[email.message.EmailMessage]:
        return [
            m
            for m in _agent_mails(outbox)
            if "Still smoking!" in (m.get_body(("plain",)) or m).get_content()
        ]

    _wait_for(new_message_mails, "the new-message mail")
    [mail] = new_message_mails()
    # The file sink keeps one file per idempotency key, so a second mail with the same key
    # would hide in it: count what was sent instead — one SendEmail job and one delivery.
    with psycopg.connect(db_dsn) as conn:
        jobs = conn.execute(
            "SELECT data->>'idempotency_key' FROM queue.job WHERE name = 'email'"
            " AND data->>'to' = 'agent@acme.example' AND data::text LIKE '%Still smoking!%'"
        ).fetchall()
        assert len(jobs) == 1, jobs
        deliveries = conn.execute(
            "SELECT status FROM email.delivery_log WHERE idempotency_key = %s", (jobs[0][0],)
        ).fetchall()
    assert deliveries == [("delivered",)]
    assert mail["X-Trace-Id"] == TRACE_ID
    html = mail.get_body(("html",))
    assert html is not None
    assert "<script>" not in html.get_content()  # autoescaped subject
    spans = [
        json.loads(line) for line in (data / "traces" / "email.jsonl").read_text().splitlines()
    ]
    consumer = [s for s in spans if s["trace_id"] == TRACE_ID and s["kind"] == "CONSUMER"]
    assert consumer, "the email consumer's span is not part of the request's trace"
    welcome = [m for m in _mails(outbox) if "cleo@acme.example" in str(m["To"])]
    assert welcome, "registration sends a welcome mail"


@pytest.mark.timeout(600)  # six services migrate and start first; slow on a busy machine
def test_auto_close_run_by_hand_closes_an_old_resolved_ticket_and_mails_the_customer_once(
    stack: tuple[str, Path], db_dsn: str
) -> None:
    base, data = stack
    scheduler = base.rsplit(":", 1)[0] + f":{int(base.rsplit(':', 1)[1]) + 2}"
    with httpx.Client(base_url=base, timeout=10) as http:
        created = http.post(
            "/organizations",
            json={"name": "Globex", "admin": {"email": "hank@globex.example", "name": "Hank"}},
        )
        assert created.status_code == 201, created.text
        admin = {"Authorization": f"Bearer {created.json()['api_token']}"}
        made = http.post(
            "/users",
            json={"email": "marge@globex.example", "name": "Marge", "role": "customer"},
            headers=admin,
        )
        assert made.status_code == 201, made.text
        customer = {"Authorization": f"Bearer {made.json()['api_token']}"}
        ticket_id = http.post("/tickets", json={"subject": "Reactor hum"}, headers=customer).json()[
            "id"
        ]
        resolved = http.put(
            f"/tickets/{ticket_id}/status", json={"status": "resolved"}, headers=admin
        )
        assert resolved.status_code == 200, resolved.text
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute(
            "UPDATE tickets.tickets SET resolved_at = now() - interval '8 days' WHERE id = %s",
            (ticket_id,),
        )

    with httpx.Client(base_url=scheduler, timeout=10) as ops:
        assert ops.post("/schedules/auto-close/run").status_code == 401
        fired = ops.post(
            "/schedules/auto-close/run", headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}
        )
        assert fired.status_code == 202, fired.text
        listed = {s["name"]: s for s in ops.get("/schedules").json()}
        assert listed["auto-close"]["state"] == "active"

    def closed_mails() -> list[email.message.EmailMessage]:
        return [
            m
            for m in _mails(data / "mail")
            if "marge@globex.example" in str(m["To"]) and "closed" in str(m["Subject"])
        ]

    _wait_for(closed_mails, "the auto-close mail")
    [mail] = closed_mails()
    # One file per idempotency key in the sink would hide a duplicate: count what was sent.
    with psycopg.connect(db_dsn) as conn:
        jobs = conn.execute(
            "SELECT data->>'idempotency_key' FROM queue.job WHERE name = 'email'"
            " AND data->>'to' = 'marge@globex.example' AND data->>'template' = 'ticket-closed'"
        ).fetchall()
        assert len(jobs) == 1, jobs
        deliveries = conn.execute(
            "SELECT status FROM email.delivery_log WHERE idempotency_key = %s", (jobs[0][0],)
        ).fetchall()
    assert deliveries == [("delivered",)]
    assert "Reactor hum" in str(mail["Subject"])
    with httpx.Client(base_url=base, timeout=10) as http:
        ticket = http.get(f"/tickets/{ticket_id}", headers=customer).json()
    assert ticket["status"] == "closed"
