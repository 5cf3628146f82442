"""Column-wise arrays for the bulk insert statement, built from payloads and per-job options."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from insightdesk.shared.queue.options import DEFAULT_JOB_OPTIONS, JobOptions
from insightdesk.shared.queue.payloads import to_json


@dataclass(frozen=True, slots=True)
class NewJob:
    """One item of :meth:`QueueClient.send_many` that carries its own options."""

    data: Any
    options: JobOptions = DEFAULT_JOB_OPTIONS


@dataclass(slots=True)
class Batch:
    """Column-wise arrays for the insert statement."""

    ids: list[uuid.UUID | None]
    data: list[str | None]
    headers: list[str | None]
    opts: list[str | None]
    debounced: list[JobOptions | None]
    raw: list[Any]

    @classmethod
    def build(cls, items: Iterable[Any], common: JobOptions) -> Batch:
        ids: list[uuid.UUID | None] = []
        data: list[str | None] = []
        headers: list[str | None] = []
        opts: list[str | None] = []
        debounced: list[JobOptions | None] = []
        raw: list[Any] = []
        common_headers = to_json(common.headers, "headers") if common.headers else None
        any_debounce = False
        for item in items:
            if isinstance(item, NewJob):
                payload, o = item.data, item.options
            else:
                payload, o = item, common
            raw.append(payload)
            data.append(None if payload is None else to_json(payload))
            ids.append(o.id)
            if o is common:
                headers.append(common_headers)
                opts.append(None)
            else:
                headers.append(to_json(o.headers, "headers") if o.headers else None)
                opts.append(to_json(o.to_wire()))
            if o.debounce:
                any_debounce = True
                debounced.append(o)
            else:
                debounced.append(None)
        return cls(ids, data, headers, opts, debounced if any_debounce else [], raw)
