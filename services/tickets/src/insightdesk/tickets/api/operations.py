"""Operational routes: liveness, readiness (database and broker), Prometheus metrics."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from insightdesk.tickets.api.dependencies import Runtime, get_runtime

router = APIRouter(include_in_schema=False)
Env = Annotated[Runtime, Depends(get_runtime)]


@router.get("/healthz")
async def healthz() -> PlainTextResponse:
    return PlainTextResponse("ok")


@router.get("/readyz")
async def readyz(runtime: Env) -> JSONResponse:
    timeout = runtime.settings.ready_timeout
    database = await _database_answers(runtime.engine, timeout)
    broker = runtime.broker.running and await runtime.broker.ping(timeout)
    ready = database and broker
    return JSONResponse(
        {
            "status": "ready" if ready else "not ready",
            "database": "ok" if database else "unavailable",
            "broker": "ok" if broker else "unavailable",
        },
        status_code=200 if ready else 503,
    )


@router.get("/metrics")
async def metrics(runtime: Env) -> Response:
    return Response(generate_latest(runtime.registry), media_type=CONTENT_TYPE_LATEST)


async def _database_answers(engine: AsyncEngine, timeout: float) -> bool:
    try:
        async with asyncio.timeout(timeout), engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError, TimeoutError):
        return False
    return True
