"""The statistics-history loop a supervisor runs: one snapshot per queue per 10-second slot.

Every process may run it: the snapshot statement writes a slot only once, so the slot is taken
by whichever process gets there first, and a slot is still written while any process lives.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from insightdesk.shared.queue.control import (
    HISTORY_EVERY,
    HISTORY_RETENTION,
    prune_history,
    snapshot,
)
from insightdesk.shared.queue.tasks import Backoff, log_failure

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
    backoff = Backoff(every, 300.0)  # failures are logged; the next slot tries again
    while True:
        await asyncio.sleep(every - time.time() % every + 0.05)
        try:
            await snapshot(store, every=every)
            if time.monotonic() - last_prune > 60:
                await prune_history(store, retention)
                last_prune = time.monotonic()
            backoff.reset()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001  # the loop must survive whatever a pass raises
            log_failure(log, "queue history snapshot", exc, backoff)
