"""Composition root of the scheduler: its queue client (its own pool), the loops and the API.

Loops (each watched: one that dies takes readiness down): ``reconcile`` (settings → schedule
table; a schedule waiting for its queue starts once the queue exists), ``cron`` (fire due
slots), ``relay`` (publish fired event schedules), ``maintenance`` (retention, one replica at a
time under the engine's advisory lock), ``recover`` (re-queue jobs of dead workers) and
``history`` (the operations console's 10-second queue statistics).

With an operator token set, the operations console (admin API and dashboard,
:mod:`insightdesk.shared.ops`) is served under ``/ops`` with the same token.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import Counter, Gauge

from insightdesk.scheduler.api import create_api
from insightdesk.scheduler.runtime import ACTIVE, DISABLED, FAILED, WAITING, Scheduler
from insightdesk.scheduler.schedules import RELAY_QUEUE
from insightdesk.scheduler.settings import SchedulerSettings
from insightdesk.shared.ops import ConsoleSettings, create_console_app
from insightdesk.shared.queue import QueueClient
from insightdesk.shared.queue.control import HISTORY_EVERY, QueueControl
from insightdesk.shared.service import ProcessContext


@asynccontextmanager
async def scheduler_process(
    settings: SchedulerSettings, ctx: ProcessContext
) -> AsyncIterator[FastAPI]:
    async with QueueClient.connect(
        settings.require_database_url(),
        schema=settings.queue_schema,
        min_size=1,
        max_size=settings.db_pool_size,
        migrate_schema=False,
    ) as client:
        await client.ensure_queue(RELAY_QUEUE)
        scheduler = Scheduler(client, settings.resolved_schedules(), clock=ctx.clock)
        await scheduler.reconcile()

        async def database() -> bool:
            async with client.pool.connection() as conn:
                await conn.execute("SELECT 1")
            return True

        fired = Counter(
            "insightdesk_scheduler_slots_fired",
            "Schedule slots this replica fired",
            ["schedule"],
            registry=ctx.registry,
        )
        states = Gauge(
            "insightdesk_scheduler_schedules",
            "Configured schedules by state (active, waiting for their queue, disabled)",
            ["state"],
            registry=ctx.registry,
        )

        async def tick() -> None:
            for name in await scheduler.tick():
                fired.labels(name).inc()

        async def count_states() -> None:
            for state in (ACTIVE, WAITING, DISABLED, FAILED):
                states.labels(state).set(
                    sum(1 for s in scheduler.status.values() if s.state == state)
                )

        ctx.health.add_check("database", database)
        ctx.watch_queue(client.loops)
        ctx.health.scrape_hooks.append(count_states)
        ctx.every("reconcile", settings.reconcile_interval, scheduler.reconcile)
        ctx.every("cron", settings.tick_interval, tick)
        ctx.every("relay", settings.relay_interval, scheduler.relay)
        ctx.every("maintenance", settings.maintenance_interval, client.supervisor.maintain)
        ctx.every("recover", settings.recover_interval, client.supervisor.recover)
        control = QueueControl(client)
        ctx.every("history", HISTORY_EVERY / 2, control.snapshot)  # one row per slot
        api = create_api(scheduler, settings.operator_token)
        if settings.operator_token is not None:
            console = ConsoleSettings(token=settings.operator_token)
            api.mount("/ops", create_console_app(client, console))
        yield api
