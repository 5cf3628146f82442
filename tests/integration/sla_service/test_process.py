"""``python -m insightdesk.sla`` as real processes: ``migrate`` prepares the database (schema,
queues, subscriptions), ``run`` answers /healthz, /readyz and /metrics, settles a deadline at
its instant and exits 0 on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from datetime import UTC, datetime, timedelta

import psycopg

from insightdesk.shared.contracts import SlaPolicyChanged
from insightdesk.shared.queue import QueueClient
from tests.integration.email.test_process import _free_port, _get
from tests.integration.helpers import OutputDrain, wait_until
from tests.unit.sla.harness import ORG, Harness, TicketStory, policy


async def test_migrate_then_run_settle_a_deadline_and_stop_on_sigterm(
    db_dsn: str, client: QueueClient
) -> None:
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": db_dsn, "SLA_HTTP_PORT": str(port)}
    migrate = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "insightdesk.sla", "migrate", env=env
    )
    assert await asyncio.wait_for(migrate.wait(), 60) == 0
    # events published before the service first runs are kept by the subscriptions
    now = datetime.now(UTC)
    await client.publish(
        "sla_policy.changed",
        SlaPolicyChanged(
            occurred_at=now, organization_id=ORG, policy_id=uuid.uuid4(), version=1, policy=policy()
        ).model_dump(mode="json"),
    )
    h = Harness(now - timedelta(minutes=60) + timedelta(seconds=3))
    ticket = TicketStory(h)
    await client.publish("ticket.created", ticket.created().model_dump(mode="json"))

    service = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "insightdesk.sla",
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

        async def breached() -> bool:
            async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
                row = await (await conn.execute("SELECT count(*) FROM sla.breaches")).fetchone()
            return bool(row and row[0] == 1)

        await wait_until(breached, timeout=30, interval=0.2, output=drain.text)
        service.send_signal(signal.SIGTERM)
        await asyncio.wait_for(service.wait(), 30)
    finally:
        if service.returncode is None:
            service.kill()
            await service.wait()
    stderr = await drain.finished()
    assert service.returncode == 0, stderr
