"""Base classes of the messages services exchange.

Rules (ARCHITECTURE.md §3, STYLE.md 5): events are past tense, commands imperative; a contract
only ever gains fields, each with a default, so an old consumer keeps reading a new producer's
message (unknown fields are ignored) and a new consumer reads an old one. ``schema_version``
names the revision a producer wrote. ORM rows never cross a queue: a service copies what
consumers need into the message (event-carried state).
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict

__all__ = ["AwareDatetime", "Command", "Contract", "Event"]  # AwareDatetime: pydantic's own


class Contract(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    schema_version: int = 1


class Event(Contract):
    """Something that happened. ``name`` is what publish/subscribe routes on."""

    name: ClassVar[str]
    occurred_at: AwareDatetime


class Command(Contract):
    """A request for another service to do something; ``queue`` is where it is sent."""

    queue: ClassVar[str]
