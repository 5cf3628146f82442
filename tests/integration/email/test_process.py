"""``python -m insightdesk.email`` as real processes: ``migrate`` prepares the database, the
service answers /healthz and /readyz, delivers a mail and exits 0 on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path

import psycopg

from insightdesk.shared.queue import JobState, QueueClient
from tests.integration.helpers import OutputDrain

from ..helpers import wait_for_state, wait_until


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # loopback only
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""
    except OSError:
        return 0, b""


def _files(folder: Path, pattern: str) -> list[Path]:
    return sorted(folder.glob(pattern)) if folder.exists() else []


def _span_records(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


async def test_migrate_then_serve_health_deliver_and_stop_on_sigterm(
    db_dsn: str, client: QueueClient, tmp_path: Path
) -> None:
    port = _free_port()
    outbox, spans = tmp_path / "mail", tmp_path / "spans"
    env = {
        **os.environ,
        "DATABASE_URL": db_dsn,
        "EMAIL_HTTP_PORT": str(port),
        "EMAIL_PROVIDER": "file",
        "EMAIL_OUTBOX_DIR": str(outbox),
        "EMAIL_SHUTDOWN_TIMEOUT": "10",
        "INSIGHTDESK_SPANS_DIR": str(spans),
    }
    migrate = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "insightdesk.email",
        "migrate",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(migrate.communicate(), 60)
    assert migrate.returncode == 0, out.decode(errors="replace")
    email_queue = await client.get_queue("email")
    assert email_queue["retry_limit"] == 5 and email_queue["dead_letter"] == "email-dead"
    assert email_queue["retry_backoff"] is True and email_queue["retry_delay_max"] == 600
    await client.get_queue("email-dead")
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        cur = await conn.execute("SELECT count(*) FROM email.delivery_log")
        assert await cur.fetchone() == (0,)

    # sent before the service ever ran: kept by the declared queue, delivered once it starts
    job_id = await client.send(
        "email",
        {
            "to": "ada@example.com",
            "template": "welcome",
            "context": {"name": "Ada", "recipient_name": "Ada", "organization_name": "Acme"},
            "idempotency_key": "process-test/1",
        },
    )
    assert job_id is not None

    service = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "insightdesk.email",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    drain = OutputDrain(service.stderr)
    try:
        base = f"http://127.0.0.1:{port}"

        async def ready() -> bool:
            return (await asyncio.to_thread(_get, f"{base}/readyz"))[0] == 200

        await wait_until(ready, timeout=30, interval=0.2)
        assert (await asyncio.to_thread(_get, f"{base}/healthz"))[0] == 200
        status, metrics = await asyncio.to_thread(_get, f"{base}/metrics")
        assert status == 200 and b"insightdesk_queue" in metrics
        status, docs = await asyncio.to_thread(_get, f"{base}/docs.json")
        assert status == 200 and b'"email"' in docs

        await wait_for_state(client, job_id, JobState.COMPLETED, timeout=20)
        assert len(_files(outbox, "*.eml")) == 1
        service.send_signal(signal.SIGTERM)
        await asyncio.wait_for(service.wait(), 30)
    finally:
        if service.returncode is None:
            service.kill()
            await service.wait()
    stderr = await drain.finished()
    assert service.returncode == 0, stderr
    names = {r["name"] for r in _span_records(spans / "email.jsonl")}
    assert "email process" in names and "email.send file" in names
