"""The FastAPI integration: ``PgRouter`` from ``insightdesk.shared.queue.broker.fastapi``, in
memory (``TestPgBroker``) and with the app's lifespan starting the broker against PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import httpx
from fastapi import Depends, FastAPI
from pydantic import BaseModel

from insightdesk.shared.queue.broker import TestPgBroker
from insightdesk.shared.queue.broker.fastapi import PgBrokerDep, PgMessage, PgRouter


class Ticket(BaseModel):
    id: int
    subject: str = ""


def tenant() -> str:
    return "acme"


def make_app(dsn: str, got: list[Any]) -> tuple[FastAPI, PgRouter]:
    router = PgRouter(dsn, poll_interval=0.2, logger=None)

    @router.subscriber("tickets")
    async def handle(
        ticket: Ticket,
        message: PgMessage,
        broker: PgBrokerDep,
        who: Annotated[str, Depends(tenant)],
    ) -> None:
        got.append((ticket, who, message.correlation_id, broker is router.broker))

    @router.post("/tickets")
    async def create(ticket: Ticket) -> dict[str, str]:
        await router.broker.publish(ticket, "tickets", correlation_id="http-1")
        return {"status": "queued"}

    app = FastAPI()
    app.include_router(router)
    return app, router


async def test_fastapi_router_in_memory_with_fastapi_dependencies() -> None:
    got: list[Any] = []
    app, router = make_app("postgresql://unused/db", got)
    async with TestPgBroker(router.broker):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            response = await http.post("/tickets", json={"id": 1, "subject": "hi"})
    assert response.status_code == 200
    assert got == [(Ticket(id=1, subject="hi"), "acme", "http-1", True)]


async def test_fastapi_lifespan_starts_the_broker_against_postgres(db_dsn: str) -> None:
    got: list[Any] = []
    app, router = make_app(db_dsn, got)
    async with app.router.lifespan_context(app):  # what the ASGI server runs
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            response = await http.post("/tickets", json={"id": 2})
        assert response.status_code == 200
        for _ in range(200):
            if got:
                break
            await asyncio.sleep(0.05)
    assert got == [(Ticket(id=2), "acme", "http-1", True)]
    assert not await router.broker.ping(0.5)  # the lifespan stopped (and disconnected) it
