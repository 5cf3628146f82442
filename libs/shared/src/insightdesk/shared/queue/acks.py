"""The ack buffer: what handlers decided, waiting for the consumer loop's next round trip.

Runners append here without touching the database; the loop takes everything in one go and sends
completions with its next claim (one statement), failures and postponements with the next
settle. If the round trip fails, what it took goes back in front, so nothing is lost or reordered.
"""

from __future__ import annotations

from collections.abc import Sequence

from insightdesk.shared.queue.ports import Completion, Failure, Postponed


class AckBuffer:
    """Completions, failures and postponements of one consumer, in arrival order."""

    __slots__ = ("done", "failures", "postponed")

    def __init__(self) -> None:
        self.done: list[Completion] = []
        self.failures: list[Failure] = []
        self.postponed: list[Postponed] = []

    def __bool__(self) -> bool:
        return bool(self.done or self.failures or self.postponed)

    @property
    def unsettled(self) -> bool:
        """Failures or postponements are waiting (they go in their own statement)."""
        return bool(self.failures or self.postponed)

    def take_done(self) -> list[Completion]:
        done, self.done = self.done, []
        return done

    def take_settlements(self) -> tuple[list[Failure], list[Postponed]]:
        failures, self.failures = self.failures, []
        postponed, self.postponed = self.postponed, []
        return failures, postponed

    def restore(
        self,
        done: Sequence[Completion] = (),
        failures: Sequence[Failure] = (),
        postponed: Sequence[Postponed] = (),
    ) -> None:
        """Put back what a failed round trip took, ahead of anything added since."""
        self.done[:0] = done
        self.failures[:0] = failures
        self.postponed[:0] = postponed
