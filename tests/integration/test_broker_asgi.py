"""The ASGI app of a PgBroker service: health, readiness, metrics, AsyncAPI docs, and a graceful
SIGTERM under ``faststream run`` (in-flight jobs finish before the process exits)."""

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
from typing import Any

from faststream.asgi import AsgiFastStream
from prometheus_client import CollectorRegistry
from pydantic import BaseModel

from insightdesk.shared.queue import JobState, QueueClient
from insightdesk.shared.queue.broker import PgBroker, QueueMetrics, make_asgi_app

from .helpers import wait_for_state, wait_until

ROOT = Path(__file__).resolve().parents[2]
DSN_VARIABLE = "INSIGHTDESK_BROKER_TEST_DSN"


class Nap(BaseModel):
    seconds: float


def make_app() -> AsgiFastStream:
    """The service run by ``faststream run ... --factory`` in the SIGTERM test."""
    broker = PgBroker(os.environ[DSN_VARIABLE], graceful_timeout=20)

    @broker.subscriber("naps", concurrency=2)
    async def nap(body: Nap) -> str:
        await asyncio.sleep(body.seconds)
        return "rested"

    return make_asgi_app(broker, registry=CollectorRegistry())


async def _get(app: Any, path: str) -> tuple[int, dict[str, str], bytes]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    headers = {k.decode(): v.decode() for k, v in start.get("headers", [])}
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], headers, body


async def test_health_readiness_metrics_and_docs(db_dsn: str, client: QueueClient) -> None:
    registry = CollectorRegistry()
    broker = PgBroker(db_dsn, queue_metrics=QueueMetrics(registry=registry), logger=None)

    @broker.subscriber("tickets", events=["ticket.created"])
    async def handle(body: Nap) -> None: ...

    app = make_asgi_app(broker, title="tickets", registry=registry)
    assert (await _get(app, "/healthz"))[0] == 200
    assert (await _get(app, "/readyz"))[0] == 503  # not started yet
    async with app.start_lifespan_context():

        async def ready() -> bool:
            return (await _get(app, "/readyz"))[0] == 200

        await wait_until(ready)  # the broker starts in the background of the lifespan
        await client.send_many("tickets", [])
        status, headers, body = await _get(app, "/metrics")
        assert status == 200 and headers["content-type"].startswith("text/plain")
        assert 'insightdesk_queue_depth{queue="tickets"} 0.0' in body.decode()
        status, _, body = await _get(app, "/docs.json")
        doc = json.loads(body)
        assert status == 200 and doc["info"]["title"] == "tickets"
        assert [c["address"] for c in doc["channels"].values()] == ["tickets"]
        status, headers, body = await _get(app, "/docs")
        assert status == 200 and b"asyncapi" in body.lower()
        assert (await _get(app, "/docs/try"))[0] == 404  # no publishing over HTTP
    assert (await _get(app, "/readyz"))[0] == 503
    assert (await _get(app, "/healthz"))[0] == 200


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # loopback only
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


async def test_sigterm_lets_in_flight_jobs_finish(db_dsn: str, client: QueueClient) -> None:
    port = _free_port()
    env = {**os.environ, DSN_VARIABLE: db_dsn, "PYTHONPATH": str(ROOT)}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "faststream",
        "run",
        "tests.integration.test_broker_asgi:make_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        ready = f"http://127.0.0.1:{port}/readyz"

        async def is_ready() -> bool:
            return await asyncio.to_thread(_status, ready) == 200

        await wait_until(is_ready, timeout=30, interval=0.2)
        job_id = await client.send("naps", {"seconds": 1.5})
        assert job_id is not None
        await wait_for_state(client, job_id, JobState.ACTIVE)
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.stderr is not None
    stderr = (await process.stderr.read()).decode(errors="replace")
    # uvicorn re-raises the signal once shut down, so the exit status is "killed by SIGTERM"
    assert process.returncode in {0, -signal.SIGTERM}, stderr
    assert "shut down gracefully" in stderr
    info = await client.get_job(job_id)
    assert info.state == JobState.COMPLETED, stderr
    assert info.output == "rested"
