"""Composition root of the scheduler: its queue client (its own pool), the loops and the API.

Loops (each watched: one that dies takes readiness down): ``reconcile`` (settings → schedule
table; a schedule waiting for its queue starts once the queue exists), ``cron`` (fire due
slots), ``relay`` (publish fired event schedules), ``maintenance`` (retention, one replica at a
time under the engine's advisory lock) and ``recover`` (re-queue jobs of dead workers).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from insightdesk.scheduler.api import create_api
from insightdesk.scheduler.runtime import Scheduler
from insightdesk.scheduler.schedules import RELAY_QUEUE
from insightdesk.scheduler.settings import SchedulerSettings
from insightdesk.shared.queue import QueueClient
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

        ctx.health.add_check("database", database)
        ctx.every("reconcile", settings.reconcile_interval, scheduler.reconcile)
        ctx.every("cron", settings.tick_interval, scheduler.tick)
        ctx.every("relay", settings.relay_interval, scheduler.relay)
        ctx.every("maintenance", settings.maintenance_interval, client.supervisor.maintain)
        ctx.every("recover", settings.recover_interval, client.supervisor.recover)
        yield create_api(scheduler, settings.operator_token)
