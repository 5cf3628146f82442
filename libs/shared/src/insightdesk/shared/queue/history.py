"""The statistics-history loop a supervisor runs: one snapshot per queue per 10-second slot.

Every process may run it: the snapshot statement writes a slot only once, so the slot is taken
by whichever process gets there first, and a slot is still written while any process lives.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from insightdesk.shared.errors import QueueError
from insightdesk.shared.queue.control import (
    HISTORY_EVERY,
    HISTORY_RETENTION,
    prune_history,
    snapshot,
)

if TYPE_CHECKING:
    from insightdesk.shared.queue.store import PgStore

log = logging.getLogger(__name__)


async def record_history(
    store: PgStore,
    *,
    every: int = HISTORY_EVERY,
    retention: float = HISTORY_RETENTION,
) -> None:
    """Snapshot just after each slot boundary; prune past ``retention`` about once a minute."""
    last_prune = 0.0
    while True:
        await asyncio.sleep(every - time.time() % every + 0.05)
        try:
            await snapshot(store, every=every)
            if time.monotonic() - last_prune > 60:
                await prune_history(store, retention)
                last_prune = time.monotonic()
        except QueueError as exc:
            log.warning("queue history snapshot failed: %s", exc)
