"""Operational routes: liveness, readiness (database and broker), Prometheus metrics.

The same :class:`~insightdesk.shared.health.Health` answers here and, when the service runs
under :mod:`insightdesk.shared.service`, in front of the app; these routes serve the app when
it is mounted on its own (tests, ``uvicorn insightdesk.tickets...``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from insightdesk.shared.queue.broker import PgBroker
from insightdesk.tickets.api.dependencies import Runtime, get_runtime

router = APIRouter(include_in_schema=False)
Env = Annotated[Runtime, Depends(get_runtime)]


@router.get("/healthz")
async def healthz() -> PlainTextResponse:
    return PlainTextResponse("ok")


@router.get("/readyz")
async def readyz(runtime: Env) -> JSONResponse:
    ready, parts = await runtime.health.report()
    return JSONResponse(
        {"status": "ready" if ready else "not ready", **parts},
        status_code=200 if ready else 503,
    )


@router.get("/metrics")
async def metrics(runtime: Env) -> Response:
    return Response(generate_latest(runtime.registry), media_type=CONTENT_TYPE_LATEST)


async def database_answers(engine: AsyncEngine) -> bool:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    return True


async def broker_answers(broker: PgBroker, timeout: float) -> bool:
    return broker.running and await broker.ping(timeout)
