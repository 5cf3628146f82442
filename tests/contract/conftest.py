"""One contract, two stores: every test here runs against PostgreSQL and the in-memory twin."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from insightdesk.shared.queue import QueueClient
from insightdesk.shared.queue.memory import MemoryStore
from insightdesk.shared.queue.store import PgStore


@dataclass
class ManualClock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


class Backend:
    """A store under contract plus the one thing the contract cannot do through the port:
    let time pass (for active jobs' heartbeat and run time, for waiting jobs' start_after),
    without sleeping."""

    def __init__(self, store: Any, client: QueueClient | None, clock: ManualClock | None) -> None:
        self.store = store
        self._client = client
        self._clock = clock

    async def age_active(self, job_id: uuid.UUID, seconds: float) -> None:
        if self._client is not None:
            async with self._client.pool.connection() as conn:
                await conn.execute(
                    "UPDATE queue.job SET heartbeat_on = heartbeat_on - %(s)s * interval '1 s', "
                    "started_on = started_on - %(s)s * interval '1 s' WHERE id = %(id)s",
                    {"s": seconds, "id": job_id},
                )
        else:
            assert self._clock is not None
            self._clock.now += timedelta(seconds=seconds)

    async def make_due(self, job_id: uuid.UUID) -> None:
        """Bring a waiting job's start_after to now, as if its delay had passed."""
        if self._client is not None:
            async with self._client.pool.connection() as conn:
                await conn.execute(
                    "UPDATE queue.job SET start_after = now() WHERE id = %s", (job_id,)
                )
        else:
            assert isinstance(self.store, MemoryStore) and self._clock is not None
            self.store._jobs[job_id].start_after = self._clock.now


@pytest.fixture(params=["postgresql", "memory"])
def store_dsn(request: pytest.FixtureRequest) -> str | None:
    """A fresh database for the PostgreSQL run (created only for it), None for the twin."""
    if request.param == "memory":
        return None
    dsn: str = request.getfixturevalue("db_dsn")
    return dsn


@pytest.fixture
async def backend(store_dsn: str | None) -> AsyncIterator[Backend]:
    if store_dsn is None:
        clock = ManualClock(datetime.now(UTC))
        yield Backend(MemoryStore(clock=clock), None, clock)
        return
    dsn = store_dsn
    async with QueueClient.connect(dsn, migrate_schema=False) as client:
        assert isinstance(client.store, PgStore)
        yield Backend(client.store, client, None)
