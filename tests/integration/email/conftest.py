"""Fixtures of the email service's integration tests: a database migrated like
``python -m insightdesk.email migrate`` would."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from insightdesk.email.database import migrate
from insightdesk.shared.queue import make_pool


@pytest.fixture
async def email_dsn(db_dsn: str) -> str:
    """A fresh database with the queue schema, the ``email`` schema and the email queues."""
    await migrate(db_dsn)
    return db_dsn


@pytest.fixture
async def email_pool(email_dsn: str) -> AsyncIterator[AsyncConnectionPool[Any]]:
    """The email service's own pool (its delivery log), as ``email_process`` opens it."""
    pool = make_pool(email_dsn, min_size=1, max_size=4)
    await pool.open(wait=True)
    yield pool
    await pool.close()
