"""The scheduler process serves the operations console under /ops with its operator token, and
writes the console's statistics history."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import httpx

from insightdesk.shared.queue import QueueClient
from insightdesk.shared.queue.control import QueueControl

from ..integration.helpers import wait_until
from .test_scheduler_replicas import free_port

TOKEN = "scheduler-console-operator-token"


async def test_scheduler_serves_the_console_under_ops(db_dsn: str, client: QueueClient) -> None:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SCHEDULER_", "CONSOLE_"))},
        "DATABASE_URL": db_dsn,
        "SCHEDULER_HTTP_PORT": str(port),
        "SCHEDULER_OPERATOR_TOKEN": TOKEN,
    }
    await client.create_queue("email")
    await client.send("email", {"to": "a@example.com"})
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "insightdesk.scheduler", env=env, stderr=asyncio.subprocess.PIPE
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(timeout=5) as http:

            async def ready() -> bool:
                try:
                    return (await http.get(f"{base}/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_until(ready, timeout=30, interval=0.2)
            assert (await http.get(f"{base}/ops/api/stats")).status_code == 401
            auth = {"Authorization": f"Bearer {TOKEN}"}
            stats = (await http.get(f"{base}/ops/api/stats", headers=auth)).json()
            assert {"name": "email", "ready": 1}.items() <= stats[0].items()
            login = await http.get(f"{base}/ops/login")
            assert login.status_code == 200 and 'action="/ops/login"' in login.text
            page = await http.get(f"{base}/ops/", follow_redirects=False)
            assert page.status_code == 303 and page.headers["location"] == "/ops/login"
            assert (await http.get(f"{base}/ops/static/console.js")).status_code == 200

            async def history_written() -> bool:
                return bool(await QueueControl(client).history(600, "email"))

            await wait_until(history_written, timeout=30, interval=0.5)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
