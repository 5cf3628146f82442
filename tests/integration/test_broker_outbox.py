"""Transactional publishing through PgBroker (the outbox) and event fan-out between services."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from insightdesk.shared.queue import QueueClient
from insightdesk.shared.queue.broker import PgBroker

from .helpers import wait_until


class TicketCreated(BaseModel):
    ticket_id: int


@pytest.fixture
async def broker(db_dsn: str) -> AsyncIterator[PgBroker]:
    broker = PgBroker(db_dsn, poll_interval=30, logger=None)  # only NOTIFY can wake it in time
    yield broker
    await broker.stop()


@pytest.fixture
async def engine(db_dsn: str) -> AsyncIterator[AsyncEngine]:
    url = (
        db_dsn.replace("postgresql://", "postgresql+psycopg://", 1)
        if db_dsn.startswith("postgresql://")
        else "postgresql+psycopg:///?" + db_dsn.replace(" ", "&")
    )
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE ticket (id int PRIMARY KEY)"))
    yield engine
    await engine.dispose()


async def test_publish_in_a_psycopg_transaction_commits_or_rolls_back_with_it(
    broker: PgBroker, client: QueueClient, db_dsn: str
) -> None:
    seen: list[dict[str, Any]] = []

    @broker.subscriber("outbox")
    async def handle(body: dict[str, Any]) -> None:
        seen.append(body)

    await broker.start()
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
        async with conn.transaction(force_rollback=True):
            rolled_back = await broker.publish({"n": 1}, "outbox", conn=conn)
        assert rolled_back is not None
        async with conn.transaction():
            kept = await broker.publish({"n": 2}, "outbox", conn=conn)
            await asyncio.sleep(0.3)
            assert seen == []  # not visible before the commit
    assert kept is not None

    async def consumed() -> bool:
        return seen == [{"n": 2}]

    await wait_until(consumed, timeout=5)  # the commit's NOTIFY woke the worker
    assert [j.id for j in await client.find_jobs("outbox")] == [kept]


async def test_publish_in_a_sqlalchemy_session_joins_the_business_write(
    broker: PgBroker, client: QueueClient, engine: AsyncEngine
) -> None:
    seen: list[TicketCreated] = []

    @broker.subscriber("tickets")
    async def handle(body: TicketCreated) -> None:
        seen.append(body)

    await broker.start()
    async with AsyncSession(engine) as session:
        await session.execute(text("INSERT INTO ticket VALUES (1)"))
        await broker.publish(TicketCreated(ticket_id=1), "tickets", conn=session)
        await session.rollback()
    assert await client.find_jobs("tickets") == []
    async with AsyncSession(engine) as session:
        await session.execute(text("INSERT INTO ticket VALUES (2)"))
        await broker.publish(TicketCreated(ticket_id=2), "tickets", conn=session)
        await session.commit()

    async def consumed() -> bool:
        return seen == [TicketCreated(ticket_id=2)]

    await wait_until(consumed, timeout=5)
    async with AsyncSession(engine) as session:
        rows = (await session.execute(text("SELECT id FROM ticket"))).scalars().all()
    assert list(rows) == [2]


async def test_an_event_reaches_every_subscribing_service_once(
    db_dsn: str, client: QueueClient, engine: AsyncEngine
) -> None:
    """Three services (brokers) consume ``ticket.created``; the publisher is a fourth."""
    received: dict[str, list[int]] = {"email": [], "sla": [], "reports": []}

    def recorder(name: str) -> Any:
        async def handle(body: TicketCreated) -> None:
            received[name].append(body.ticket_id)

        return handle

    services = []
    for name in received:
        service = PgBroker(db_dsn, logger=None)
        service.subscriber(f"{name}.events", events=["ticket.created"], concurrency=2)(
            recorder(name)
        )
        services.append(service)
    publisher = PgBroker(db_dsn, logger=None)
    try:
        for service in services:
            await service.start()
        await publisher.connect()
        async with AsyncSession(engine) as session:
            await session.execute(text("INSERT INTO ticket VALUES (7)"))
            ids = await publisher.publish_event(
                "ticket.created", TicketCreated(ticket_id=7), conn=session
            )
            await session.commit()
        assert len(ids) == 3
        async with AsyncSession(engine) as session:
            await publisher.publish_event(
                "ticket.created", TicketCreated(ticket_id=8), conn=session
            )
            await session.rollback()

        async def all_got_it() -> bool:
            return all(v == [7] for v in received.values())

        await wait_until(all_got_it, timeout=10)
        await asyncio.sleep(0.3)
        assert received == {"email": [7], "sla": [7], "reports": [7]}
        assert sorted(await client.subscriptions()) == [
            ("ticket.created", "email.events"),
            ("ticket.created", "reports.events"),
            ("ticket.created", "sla.events"),
        ]
    finally:
        for b in (*services, publisher):
            await b.stop()


async def test_an_event_publisher_sends_return_values_as_events(
    broker: PgBroker, client: QueueClient
) -> None:
    got: list[int] = []

    @broker.subscriber("audit", events=["ticket.closed"])
    async def audit(body: TicketCreated) -> None:
        got.append(body.ticket_id)

    @broker.publisher(event="ticket.closed")
    @broker.subscriber("close")
    async def close(body: TicketCreated) -> TicketCreated:
        return body

    await broker.start()
    await broker.publish(TicketCreated(ticket_id=3), "close")

    async def audited() -> bool:
        return got == [3]

    await wait_until(audited, timeout=5)
