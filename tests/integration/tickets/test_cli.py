"""``python -m insightdesk.tickets migrate`` and serving under uvicorn with a graceful SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg

from insightdesk.shared.queue import QueueClient

from .desk import OPERATOR, OPERATOR_TOKEN


def run_module(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "insightdesk.tickets", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def service_env(dsn: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKETS_")}
    return {**env, "DATABASE_URL": dsn, "INSIGHTDESK_ENV": "test", **extra}


async def test_migrate_creates_the_schema_and_the_email_queue_and_can_run_twice(
    db_dsn: str, client: QueueClient
) -> None:
    env = service_env(db_dsn)

    first = await asyncio.to_thread(run_module, "migrate", env=env)
    second = await asyncio.to_thread(run_module, "migrate", env=env)

    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        cur = await conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'tickets' "
            "ORDER BY table_name"
        )
        tables = [r[0] for r in await cur.fetchall()]
    assert tables == [
        "business_calendars",
        "exports",
        "messages",
        "organizations",
        "participants",
        "pending_notifications",
        "sla_policies",
        "ticket_sla",
        "tickets",
        "users",
        "version",
    ]
    assert (await client.get_queue("email"))["name"] == "email"
    assert (await client.get_queue("reports-export"))["name"] == "reports-export"


def test_migrate_without_a_database_url_fails_cleanly() -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL"}}

    result = run_module("migrate", env=env)

    assert result.returncode == 1
    assert "DATABASE_URL is not set" in result.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def test_the_service_serves_traces_and_stops_gracefully_on_sigterm(
    db_dsn: str, tmp_path: Path
) -> None:
    env = service_env(
        db_dsn, INSIGHTDESK_SPANS_DIR=str(tmp_path), TICKETS_OPERATOR_TOKEN=OPERATOR_TOKEN
    )
    assert (await asyncio.to_thread(run_module, "migrate", env=env)).returncode == 0
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "insightdesk.tickets",
        env={**env, "TICKETS_HTTP_PORT": str(port)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=2) as http:
            while True:
                try:
                    ready = await http.get("/readyz")
                    break
                except httpx.TransportError:
                    assert proc.returncode is None, "the service exited during start-up"
                    assert time.monotonic() < deadline, "the service did not come up"
                    await asyncio.sleep(0.2)
            created = await http.post(
                "/organizations",
                json={"name": "Acme", "admin": {"email": "ada@acme.example", "name": "Ada"}},
                headers=OPERATOR,
            )
        assert ready.status_code == 200
        assert created.status_code == 201

        proc.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(proc.communicate(), timeout=20)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, output.decode()
    assert "Application shutdown complete" in output.decode()
    spans = [json.loads(line) for line in (tmp_path / "tickets.jsonl").read_text().splitlines()]
    server = [s for s in spans if s["kind"] == "SERVER"]
    assert {s["service"] for s in spans} == {"tickets"}
    assert any(s["attributes"].get("http.route") == "/organizations" for s in server)
    publishes = [s for s in spans if s["kind"] == "PRODUCER"]
    assert {p["trace_id"] for p in publishes} <= {s["trace_id"] for s in server}
    assert publishes
