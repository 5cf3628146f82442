"""The engine's long-lived background tasks: how they survive failures, how a death is made
visible, and how they are stopped within a bound.

Every loop of the engine (the consumer's claim loop, the heartbeater, crash recovery,
maintenance, the history snapshots, cron) follows STYLE rule 19: a failed step is logged with
its exception and retried after a capped exponential :class:`Backoff`; an error of the project's
tree (the database went away, a lock timed out) is a warning, anything else a bug and logged
at ERROR with its traceback, and retried too. Only what no guard catches (``KeyboardInterrupt``,
``SystemExit``, a bug in the guard itself) ends a loop, and :class:`Loops` reports that loudly
to its listeners: the service entry takes readiness down and ends the process with exit 1.

Stopping is bounded: :func:`cancel_and_wait` gives a task :data:`STOP_WAIT` seconds to end
after its cancellation and then abandons it with an error log, so a driver that swallows a
cancellation (a pool waiting to reconnect) cannot hold shutdown forever.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from insightdesk.shared.errors import QueueError

log = logging.getLogger(__name__)

STOP_WAIT = 5.0
"""Longest wait for a cancelled background task to end before it is abandoned."""

DeathListener = Callable[[str, str], None]


class Backoff:
    """Capped exponential delays between the attempts of a failing step."""

    def __init__(self, first: float = 0.05, cap: float = 30.0) -> None:
        self.first = first
        self.cap = cap
        self.failures = 0

    def reset(self) -> None:
        self.failures = 0

    def next(self) -> float:
        """Count a failure; the delay before the next attempt."""
        self.failures += 1
        return float(min(self.cap, self.first * 2 ** min(self.failures - 1, 30)))


def log_failure(logger: logging.Logger, what: str, exc: BaseException, backoff: Backoff) -> float:
    """Log one failed step of a loop (with its exception) and count it; the delay to wait."""
    delay = backoff.next()
    if isinstance(exc, QueueError | OSError):
        logger.warning(
            "%s failed (%d in a row, retry in %.2fs): %r", what, backoff.failures, delay, exc
        )
    else:  # not an error the engine expects: a bug, or a driver error that escaped wrapping
        logger.error(
            "%s failed unexpectedly (%d in a row, retry in %.2fs)",
            what,
            backoff.failures,
            delay,
            exc_info=exc,
        )
    return delay


async def every(
    what: str,
    interval: Callable[[], float],
    action: Callable[[], Awaitable[Any]],
    *,
    logger: logging.Logger = log,
    first: float = 0.5,
    cap: float = 60.0,
    delay: float = 0.0,
) -> None:
    """Run ``action`` every ``interval()`` seconds, forever, the first time after ``delay``
    seconds; failures back off (see module)."""
    backoff = Backoff(first, cap)
    if delay > 0:
        await asyncio.sleep(delay)
    while True:
        try:
            await action()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001  # the loop must survive whatever a step raises
            await asyncio.sleep(max(interval(), log_failure(logger, what, exc, backoff)))
            continue
        backoff.reset()
        await asyncio.sleep(interval())


class Loops:
    """Watches the long-lived tasks of one engine client. A task that ends with an exception
    (cancellation is how they are stopped, and a loop allowed to return may) is logged at ERROR
    and reported to every listener (:meth:`on_death`), and stays in :attr:`dead`."""

    def __init__(self) -> None:
        self.dead: dict[str, str] = {}
        self._listeners: list[DeathListener] = []

    def on_death(self, listener: DeathListener) -> None:
        """Call ``listener(name, reason)`` when a watched loop dies (also for past deaths)."""
        self._listeners.append(listener)
        for name, reason in self.dead.items():
            listener(name, reason)

    def spawn(
        self, name: str, coro: Coroutine[Any, Any, None], *, may_return: bool = False
    ) -> asyncio.Task[None]:
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(lambda t: self._ended(name, t, may_return))
        return task

    def _ended(self, name: str, task: asyncio.Task[None], may_return: bool) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            if may_return:
                return
            reason = "returned"
            log.error("queue loop %s returned; it will not run again", name)
        else:
            reason = f"crashed: {exc!r}"
            log.error("queue loop %s died; it will not run again", name, exc_info=exc)
        self.dead[name] = reason
        for listener in list(self._listeners):
            try:
                listener(name, reason)
            except Exception:
                log.exception("a listener of the death of loop %s failed", name)


async def cancel_and_wait(task: asyncio.Task[Any], timeout: float | None = None) -> bool:
    """Cancel a background task and wait for it at most ``timeout`` seconds (default
    :data:`STOP_WAIT`), without swallowing our own cancellation; False when it had to be
    abandoned (it ignored its cancellation: logged)."""
    wait = STOP_WAIT if timeout is None else timeout
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=wait)
    current = asyncio.current_task()
    if current is not None and current.cancelling():
        raise asyncio.CancelledError
    if not done:
        task.cancel()  # once more, in case it swallowed the first: it may end later
        log.error("task %s ignored its cancellation for %.1fs; abandoned", task.get_name(), wait)
        return False
    return True


async def within(what: str, timeout: float, coro: Coroutine[Any, Any, Any]) -> bool:
    """Run ``coro`` for at most ``timeout`` seconds in a task of its own, so that a driver
    swallowing the cancellation cannot hold the caller; False (logged) when it did not finish
    in time or failed."""
    task = asyncio.ensure_future(coro)
    try:
        done, _ = await asyncio.wait([task], timeout=timeout)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if not done:
        task.cancel()
        log.warning("%s did not finish within %.1fs; given up", what, timeout)
        return False
    exc = task.exception()
    if exc is not None:
        log.warning("%s failed: %r", what, exc)
        return False
    return True
