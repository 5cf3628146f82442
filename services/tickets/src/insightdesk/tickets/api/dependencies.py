"""Per-request dependencies: the runtime built by the composition root, the request's unit of
work (one session, one transaction) and the authenticated caller."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, cast

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from insightdesk.shared.clock import Clock
from insightdesk.shared.health import Health
from insightdesk.shared.queue.broker import PgBroker
from insightdesk.tickets.accounts import authenticate
from insightdesk.tickets.outbox import BrokerOutbox
from insightdesk.tickets.permissions import Actor
from insightdesk.tickets.repository import TicketRepository
from insightdesk.tickets.settings import TicketsSettings


@dataclass(frozen=True, slots=True)
class Runtime:
    """What the composition root built once for the process."""

    settings: TicketsSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    broker: PgBroker
    registry: CollectorRegistry
    clock: Clock
    health: Health


@dataclass(slots=True)
class UnitOfWork:
    """One request's transaction: the repository and outbox share its session, and nothing is
    written unless :meth:`commit` is reached (any error rolls everything back)."""

    session: AsyncSession
    repo: TicketRepository
    outbox: BrokerOutbox
    now: datetime

    async def commit(self) -> None:
        await self.session.commit()


def get_runtime(request: Request) -> Runtime:
    return cast("Runtime", request.app.state.runtime)


async def get_unit(
    runtime: Annotated[Runtime, Depends(get_runtime)],
) -> AsyncIterator[UnitOfWork]:
    async with runtime.sessions() as session:  # closing without commit rolls back
        yield UnitOfWork(
            session,
            TicketRepository(session),
            BrokerOutbox(
                runtime.broker,
                session,
                window_seconds=runtime.settings.notify_window_seconds,
                public_base_url=runtime.settings.public_base_url,
            ),
            runtime.clock.now(),
        )


bearer = HTTPBearer(
    auto_error=False,
    description="A user's API token, as returned when the user was created.",
)


async def get_actor(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    unit: Annotated[UnitOfWork, Depends(get_unit)],
) -> Actor:
    return await authenticate(credentials.credentials if credentials else None, repo=unit.repo)


Unit = Annotated[UnitOfWork, Depends(get_unit)]
Caller = Annotated[Actor, Depends(get_actor)]
