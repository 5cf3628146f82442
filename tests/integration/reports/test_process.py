"""``python -m insightdesk.reports`` as real processes: ``migrate`` declares the queues and
subscriptions, the service answers /healthz, /readyz, /metrics and /downloads, runs an export
and exits 0 on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from insightdesk.shared.contracts import ExportReport
from insightdesk.shared.queue import JobState, QueueClient
from tests.integration.helpers import OutputDrain

from ..helpers import wait_for_state, wait_until


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _get(url: str) -> tuple[int, bytes, dict[str, str]]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # loopback only
            return int(response.status), response.read(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, b"", {}
    except OSError:
        return 0, b"", {}


async def test_migrate_then_serve_export_download_and_stop_on_sigterm(
    db_dsn: str, client: QueueClient, tmp_path: Path
) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DATABASE_URL": db_dsn,
        "REPORTS_HTTP_PORT": str(port),
        "REPORTS_PUBLIC_BASE_URL": base,
        "REPORTS_STORAGE_DIR": str(tmp_path / "store"),
        "REPORTS_SHUTDOWN_TIMEOUT": "10",
    }
    migrate = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "insightdesk.reports",
        "migrate",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(migrate.communicate(), 60)
    assert migrate.returncode == 0, out.decode(errors="replace")
    subscriptions = set(await client.subscriptions())
    assert ("ticket.created", "reports-events") in subscriptions
    assert ("organization.updated", "reports-events") in subscriptions
    assert ("maintenance.cleanup_requested", "reports-maintenance") in subscriptions
    await client.get_queue("email")

    export_id = uuid.uuid4()
    job = await client.send(
        ExportReport.queue,
        ExportReport(
            export_id=export_id,
            organization_id=uuid.uuid4(),
            requested_by=uuid.uuid4(),
            requester_email="ada@acme.example",
        ).model_dump(mode="json"),
    )
    assert job is not None

    service = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "insightdesk.reports",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    drain = OutputDrain(service.stderr)
    try:

        async def ready() -> bool:
            return (await asyncio.to_thread(_get, f"{base}/readyz"))[0] == 200

        await wait_until(ready, timeout=40, interval=0.2)
        assert (await asyncio.to_thread(_get, f"{base}/healthz"))[0] == 200
        status, metrics, _ = await asyncio.to_thread(_get, f"{base}/metrics")
        assert status == 200 and b"insightdesk_queue" in metrics
        await wait_for_state(client, job, JobState.COMPLETED, timeout=30)
        [mail] = await client.find_jobs("email", limit=10)
        url = mail.data["context"]["download_url"]
        assert url.startswith(f"{base}/downloads/")
        status, body, headers = await asyncio.to_thread(_get, url)
        assert status == 200
        assert body.startswith(b"ticket_id,subject,status")
        assert headers["content-type"] == "text/csv; charset=utf-8"
        assert (await asyncio.to_thread(_get, url[:-3] + "xyz"))[0] == 403
        service.send_signal(signal.SIGTERM)
        await asyncio.wait_for(service.wait(), 30)
    finally:
        if service.returncode is None:
            service.kill()
            await service.wait()
    stderr = await drain.finished()
    assert service.returncode == 0, stderr
