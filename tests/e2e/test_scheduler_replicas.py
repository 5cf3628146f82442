"""Two scheduler processes on one database: each slot of a per-second schedule becomes exactly
one job, both report ready (their loops running) and both stop cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from collections import Counter

import httpx

from insightdesk.shared.queue import QueueClient

from ..integration.helpers import wait_until


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def test_two_replicas_make_one_job_per_slot_and_stop_on_sigterm(
    db_dsn: str, client: QueueClient
) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SCHEDULER_")},
        "DATABASE_URL": db_dsn,
        "SCHEDULER_TICK_INTERVAL": "0.2",
        "SCHEDULER_SCHEDULES": json.dumps(
            {"every-second": {"cron": "* * * * * *", "queue": "ticks", "grace": 5}}
        ),
    }
    migrate = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "insightdesk.scheduler", "migrate", env=env
    )
    assert await asyncio.wait_for(migrate.wait(), 60) == 0
    await client.create_queue("ticks")
    ports = [free_port(), free_port()]
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "insightdesk.scheduler",
            env={**env, "SCHEDULER_HTTP_PORT": str(port)},
            stderr=asyncio.subprocess.PIPE,
        )
        for port in ports
    ]
    try:
        async with httpx.AsyncClient(timeout=2) as http:
            for port in ports:

                async def ready(port: int = port) -> bool:
                    try:
                        answer = await http.get(f"http://127.0.0.1:{port}/readyz")
                    except httpx.TransportError:
                        return False
                    return answer.status_code == 200

                await wait_until(ready, timeout=30, interval=0.2)
            readiness = (await http.get(f"http://127.0.0.1:{ports[0]}/readyz")).json()
            assert readiness["loop:cron"] == "ok" and readiness["database"] == "ok"

            async def three_slots() -> bool:
                return len(await client.find_jobs("ticks")) >= 4

            await wait_until(three_slots, timeout=30, interval=0.2)
            listed = (await http.get(f"http://127.0.0.1:{ports[1]}/schedules")).json()
            metrics = [(await http.get(f"http://127.0.0.1:{port}/metrics")).text for port in ports]
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        codes = [await asyncio.wait_for(p.wait(), 30) for p in procs]
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    errors = [(await p.stderr.read()).decode(errors="replace") for p in procs if p.stderr]
    assert codes == [0, 0], errors
    jobs = await client.find_jobs("ticks")
    per_slot = Counter(j.headers["slot"] for j in jobs if j.headers)
    assert len(per_slot) >= 3 and set(per_slot.values()) == {1}, per_slot
    assert len(jobs) == len(per_slot)
    states = {s["name"]: s["state"] for s in listed}
    assert states["every-second"] == "active"
    assert states["auto-close"] == "waiting"  # ticket-actions does not exist in this database
    assert all('insightdesk_scheduler_schedules{state="waiting"}' in m for m in metrics)
    assert any('slots_fired_total{schedule="every-second"}' in m for m in metrics)
