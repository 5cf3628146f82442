"""The email service's part of the nightly cleanup (``maintenance.cleanup_requested``): purge
delivery-log rows older than the retention, in batches, within a time budget per run."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from insightdesk.email.delivery import DeliveryLog


@dataclass(frozen=True, slots=True)
class Purged:
    rows: int
    batches: int
    finished: bool
    """False when the time budget ran out first (the next run continues)."""

    def as_output(self) -> dict[str, object]:
        return {"purged": self.rows, "batches": self.batches, "finished": self.finished}


async def purge_delivery_log(
    *,
    delivery_log: DeliveryLog,
    now: datetime,
    retention_days: int,
    batch_size: int = 5000,
    max_seconds: float = 60.0,
) -> Purged:
    """Delete finished rows last changed more than ``retention_days`` before ``now``."""
    started = time.monotonic()
    cutoff = now - timedelta(days=retention_days)
    rows = batches = 0
    while True:
        purged = await delivery_log.purge_before(cutoff, batch_size)
        rows += purged
        batches += 1
        if purged < batch_size:
            return Purged(rows, batches, finished=True)
        if time.monotonic() - started > max_seconds:
            return Purged(rows, batches, finished=False)
