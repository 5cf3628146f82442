"""Fixtures of the email service's integration tests: a database migrated like
``python -m insightdesk.email migrate`` would."""

from __future__ import annotations

import pytest

from insightdesk.email.database import migrate


@pytest.fixture
async def email_dsn(db_dsn: str) -> str:
    """A fresh database with the queue schema, the ``email`` schema and the email queues."""
    await migrate(db_dsn)
    return db_dsn
