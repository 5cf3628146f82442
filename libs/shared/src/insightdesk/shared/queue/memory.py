"""An in-memory twin of the engine's store, held to the same contract tests as
:class:`~insightdesk.shared.queue.store.PgStore` (``tests/contract/``).

It implements the :class:`~insightdesk.shared.queue.ports.JobStore` port: queues, sends, claims
(keyed ones included), completion, the failure path (retry with the queue's delay or backoff,
then failed into the dead-letter queue), snooze/release, heartbeats, crash recovery and the
consumer's claim session with notifications. The clock is injectable (``clock=``), so tests of
the consumer loop, heartbeats and recovery move time instead of sleeping. Options it cannot
honour (throttling, debounce, the exclusive queue policy) are
refused with :class:`~insightdesk.shared.errors.InvalidArgument` rather than ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import uuid
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from insightdesk.shared.errors import InvalidArgument, JobNotFound, QueueNotFound
from insightdesk.shared.queue.jobs import Job, JobInfo, JobState
from insightdesk.shared.queue.options import (
    DEFAULT_JOB_OPTIONS,
    JobOptions,
    QueueDefinition,
    QueueOptions,
    QueuePolicy,
    validate_name,
)
from insightdesk.shared.queue.payloads import to_json
from insightdesk.shared.queue.ports import (
    Claimed,
    ClaimRequest,
    Completion,
    Failure,
    Postponed,
)

_QUEUED = (JobState.CREATED, JobState.RETRY)
_SUPPORTED_POLICIES = (
    QueuePolicy.STANDARD,
    QueuePolicy.SHORT,
    QueuePolicy.SINGLETON,
    QueuePolicy.STATELY,
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _seconds(value: float | timedelta | None) -> float | None:
    if value is None:
        return None
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


@dataclass(slots=True)
class _Row:
    """One stored job, the fields of the PostgreSQL ``job`` row the contract can observe."""

    id: uuid.UUID
    name: str
    seq: int
    data: Any
    headers: dict[str, Any] | None
    priority: int
    policy: QueuePolicy
    retry_limit: int
    retry_delay: float
    retry_backoff: bool
    retry_delay_max: float | None
    expire_in: float
    heartbeat: float | None
    delete_after: float
    keep_until: datetime
    start_after: datetime
    singleton_key: str | None
    dead_letter: str | None
    created_on: datetime
    state: JobState = JobState.CREATED
    retry_count: int = 0
    lease: uuid.UUID | None = None
    started_on: datetime | None = None
    heartbeat_on: datetime | None = None
    completed_on: datetime | None = None
    output: Any = None
    waiting: bool = False
    """Queued with start_after in the future and not yet released by a promoting claim (the
    database keeps such jobs out of job_ready until then)."""

    def job(self) -> Job:
        assert self.lease is not None
        return Job(
            id=self.id,
            queue=self.name,
            lease=self.lease,
            data=self.data,
            headers=self.headers or {},
            retry_count=self.retry_count,
            retry_limit=self.retry_limit,
            expire_in=self.expire_in,
            heartbeat=self.heartbeat,
            priority=self.priority,
            singleton_key=self.singleton_key,
            created_on=self.created_on,
            start_after=self.start_after,
        )

    def info(self) -> JobInfo:
        return JobInfo(
            id=self.id,
            name=self.name,
            state=self.state,
            priority=self.priority,
            data=self.data,
            headers=self.headers,
            policy=self.policy.value,
            retry_limit=self.retry_limit,
            retry_count=self.retry_count,
            retry_delay=self.retry_delay,
            retry_backoff=self.retry_backoff,
            retry_delay_max=self.retry_delay_max,
            expire_in=self.expire_in,
            heartbeat=self.heartbeat,
            delete_after=self.delete_after,
            keep_until=self.keep_until,
            start_after=self.start_after,
            singleton_key=self.singleton_key,
            singleton_on=None,
            dead_letter=self.dead_letter,
            created_on=self.created_on,
            started_on=self.started_on,
            heartbeat_on=self.heartbeat_on,
            completed_on=self.completed_on,
            output=self.output,
        )


@dataclass(slots=True)
class _Listener:
    notified: set[str] = field(default_factory=set)
    wake: asyncio.Event | None = None
    queues: frozenset[str] = frozenset()  # the queues whose notifications it receives


class MemoryStore:
    """The :class:`~insightdesk.shared.queue.ports.JobStore` port over dicts."""

    def __init__(self, *, clock: Callable[[], datetime] = _utcnow) -> None:
        self.clock = clock
        self.statements = 0
        """Round trips a database would have made (what idle-cost tests count)."""
        self._queues: dict[str, QueueDefinition] = {}
        self._jobs: dict[uuid.UUID, _Row] = {}
        self._seq = itertools.count()
        self._listeners: list[_Listener] = []

    # ------------------------------------------------------------------ queues

    async def create_queue(self, name: str, options: QueueOptions | None = None) -> None:
        validate_name(name)
        opts = options or QueueOptions()
        if opts.policy not in _SUPPORTED_POLICIES:
            raise InvalidArgument(f"MemoryStore does not implement the {opts.policy} policy")
        if opts.dead_letter is not None:
            if opts.dead_letter == name:
                raise InvalidArgument(f"queue {name!r} cannot be its own dead-letter queue")
            if opts.dead_letter not in self._queues:
                raise QueueNotFound(
                    f"dead-letter queue {opts.dead_letter!r} of {name!r} does not exist; "
                    "create it first"
                )
        self.statements += 1
        self._queues[name] = QueueDefinition(name, opts)

    async def get_queue(self, name: str) -> QueueDefinition:
        self.statements += 1
        found = self._queues.get(validate_name(name))
        if found is None:
            raise QueueNotFound(f"queue {name!r} does not exist")
        return found

    # ------------------------------------------------------------------ sending

    async def send(
        self, queue: str, data: Any = None, options: JobOptions | None = None
    ) -> uuid.UUID | None:
        validate_name(queue)
        opts = options or DEFAULT_JOB_OPTIONS
        if opts.singleton_seconds is not None or opts.debounce:
            raise InvalidArgument("MemoryStore does not implement throttling (singleton_seconds)")
        if data is not None:
            to_json(data)  # the same refusal of non-JSON payloads as the database path
        self.statements += 1
        definition = self._queues.get(queue)
        if definition is None:
            raise QueueNotFound(f"queue {queue!r} does not exist; create it with create_queue()")
        if opts.id is not None and opts.id in self._jobs:
            return None
        q = definition.options
        if self._waiting_for_key(queue, q.policy, opts.singleton_key, JobState.CREATED):
            return None  # the policy's unique index rejects it (ON CONFLICT DO NOTHING)
        now = self.clock()
        if isinstance(opts.start_after, datetime):
            start = max(opts.start_after, now)
        else:
            start = now + timedelta(seconds=_seconds(opts.start_after) or 0.0)

        def pick(value: Any, default: Any) -> Any:
            return default if value is None else value

        retention = pick(_seconds(opts.retention), q.retention)
        row = _Row(
            id=opts.id or uuid.uuid4(),
            name=queue,
            seq=next(self._seq),
            data=data,
            headers=dict(opts.headers) if opts.headers else None,
            priority=pick(opts.priority, q.priority),
            policy=q.policy,
            retry_limit=pick(opts.retry_limit, q.retry_limit),
            retry_delay=pick(_seconds(opts.retry_delay), q.retry_delay),
            retry_backoff=pick(opts.retry_backoff, q.retry_backoff),
            retry_delay_max=pick(_seconds(opts.retry_delay_max), q.retry_delay_max),
            expire_in=pick(_seconds(opts.expire_in), q.expire_in),
            heartbeat=pick(_seconds(opts.heartbeat), q.heartbeat),
            delete_after=pick(_seconds(opts.delete_after), q.delete_after),
            keep_until=now + timedelta(seconds=retention),
            start_after=start,
            singleton_key=opts.singleton_key,
            dead_letter=pick(opts.dead_letter, q.dead_letter),
            created_on=now,
            waiting=start > now,
        )
        self._jobs[row.id] = row
        self._notify(queue)
        return row.id

    def _notify(self, queue: str) -> None:
        for listener in self._listeners:
            if queue not in listener.queues:
                continue
            listener.notified.add(queue)
            if listener.wake is not None:
                listener.wake.set()

    # ------------------------------------------------------------------ jobs

    async def get_job(self, job_id: uuid.UUID) -> JobInfo:
        self.statements += 1
        row = self._jobs.get(job_id)
        if row is None:
            raise JobNotFound(f"no job with id {job_id}")
        return row.info()

    def _waiting_for_key(
        self,
        queue: str,
        policy: QueuePolicy,
        key: str | None,
        state: JobState,
        *,
        besides: uuid.UUID | None = None,
    ) -> _Row | None:
        """The job that holds (queue, key)'s one slot in ``state`` under ``policy`` (short: one
        created job per key; stately: one in each of created and retry), as the unique
        indexes job_policy_short and job_policy_stately do."""
        if not (
            policy is QueuePolicy.STATELY
            or (policy is QueuePolicy.SHORT and state is JobState.CREATED)
        ):
            return None
        for r in self._jobs.values():
            if (
                r.name == queue
                and r.state is state
                and r.policy is policy
                and (r.singleton_key or "") == (key or "")
                and r.id != besides
            ):
                return r
        return None

    def _conflict(self, row: _Row, state: JobState) -> _Row | None:
        return self._waiting_for_key(row.name, row.policy, row.singleton_key, state, besides=row.id)

    @staticmethod
    def _conflict_error(row: _Row, other: _Row, action: str, error: Any) -> dict[str, Any]:
        """The error of a job that yields its key's slot (as conflict_error() in SQL)."""
        return {
            "type": "PolicyConflict",
            "message": (
                f"{row.policy.value} queue '{row.name}' already has a job waiting "
                f"({other.state.value}) for singleton key '{row.singleton_key or ''}': "
                f"this {action} yields to it (job {other.id})"
            ),
            "error": error,
        }

    def _held(self, job_id: uuid.UUID, lease: uuid.UUID) -> _Row | None:
        row = self._jobs.get(job_id)
        if row is None or row.state is not JobState.ACTIVE or row.lease != lease:
            return None
        return row

    def _complete(self, done: list[Completion]) -> int:
        now = self.clock()
        count = 0
        for d in done:
            row = self._held(d.id, d.lease)
            if row is None:
                continue
            row.state, row.completed_on, row.heartbeat_on = JobState.COMPLETED, now, None
            row.output = None if d.output is None else json.loads(d.output)
            count += 1
        return count

    def _claim(self, request: ClaimRequest, default_heartbeat: float) -> list[Job]:
        now = self.clock()
        due = [
            r
            for r in self._jobs.values()
            if r.name == request.queue and r.state in _QUEUED and r.start_after <= now
        ]
        if request.promote or request.keyed:  # the keyed claim always promotes
            for r in due:
                r.waiting = False
        ready = sorted((r for r in due if not r.waiting), key=lambda r: (-r.priority, r.seq))
        if request.keyed:
            busy = {
                r.singleton_key or ""
                for r in self._jobs.values()
                if r.name == request.queue and r.state is JobState.ACTIVE
            }
            picked: list[_Row] = []
            for r in ready[: request.limit]:
                key = r.singleton_key or ""
                if key not in busy:
                    busy.add(key)
                    picked.append(r)
            ready = picked
        claimed: list[Job] = []
        for row in ready[: request.limit]:
            row.state, row.started_on, row.heartbeat_on = JobState.ACTIVE, now, now
            row.lease = uuid.uuid4()
            row.heartbeat = default_heartbeat if row.heartbeat is None else row.heartbeat
            claimed.append(row.job())
        return claimed

    async def claim(
        self, queue: str, limit: int = 1, *, default_heartbeat: float = 15.0
    ) -> list[Job]:
        validate_name(queue)
        if limit < 1:
            raise InvalidArgument(f"limit must be >= 1, got {limit}")
        definition = await self.get_queue(queue)
        return self._claim(ClaimRequest(queue, limit, definition.keyed), default_heartbeat)

    async def complete(self, job_id: uuid.UUID, lease: uuid.UUID, output: Any = None) -> bool:
        self.statements += 1
        return self._complete([Completion(job_id, lease, to_json(output, "output"))]) == 1

    def _retry_delay(self, row: _Row) -> float:
        delay = row.retry_delay
        if row.retry_backoff:
            # the database adds jitter in [0.5, 1) of the step; the twin takes its midpoint
            delay = row.retry_delay * 2 ** min(row.retry_count, 30) * 0.75
        return min(delay, row.retry_delay_max if row.retry_delay_max is not None else delay)

    def _fail(
        self,
        job_id: uuid.UUID,
        lease: uuid.UUID | None,
        error: Any,
        delay: float | None,
        final: bool,
    ) -> str | None:
        row = self._jobs.get(job_id)
        if row is None or row.state is not JobState.ACTIVE:
            return None
        if lease is not None and row.lease != lease:
            return None
        now = self.clock()
        if row.retry_count < row.retry_limit and not final:
            other = self._conflict(row, JobState.RETRY)
            if other is not None:  # yields to the job already waiting to retry for its key
                return self._fail(
                    job_id, lease, self._conflict_error(row, other, "retry", error), None, True
                )
            wait = self._retry_delay(row) if delay is None else delay
            try:
                start = now + timedelta(seconds=wait)
            except OverflowError as exc:  # "interval out of range" in the database
                error = {
                    "type": "SettlementError",
                    "message": "the job could not be settled as asked, so it failed for good: "
                    f"{exc}",
                    "error": error,
                }
                return self._fail(job_id, lease, error, None, True)
            row.output, row.lease, row.heartbeat_on = error, None, None
            row.state, row.completed_on = JobState.RETRY, None
            row.retry_count += 1
            row.start_after, row.waiting = start, wait > 0
            return row.state.value
        row.output, row.lease, row.heartbeat_on = error, None, None
        row.state, row.completed_on = JobState.FAILED, now
        if row.dead_letter is not None and row.dead_letter in self._queues:
            headers = dict(row.headers or {})
            headers["dead_letter"] = {
                "queue": row.name,
                "id": str(row.id),
                "error": error,
                "attempts": row.retry_count + 1,
                "failed_on": now.isoformat(),
            }
            self._insert_dead_letter(row, headers)
        return row.state.value

    def _insert_dead_letter(self, row: _Row, headers: dict[str, Any]) -> None:
        assert row.dead_letter is not None
        q = self._queues[row.dead_letter].options
        now = self.clock()
        letter = _Row(
            id=uuid.uuid4(),
            name=row.dead_letter,
            seq=next(self._seq),
            data=row.data,
            headers=headers,
            priority=row.priority,
            policy=q.policy,
            retry_limit=q.retry_limit,
            retry_delay=q.retry_delay,
            retry_backoff=q.retry_backoff,
            retry_delay_max=q.retry_delay_max,
            expire_in=q.expire_in,
            heartbeat=q.heartbeat,
            delete_after=q.delete_after,
            keep_until=now + timedelta(seconds=q.retention),
            start_after=now,
            singleton_key=None,
            dead_letter=q.dead_letter,
            created_on=now,
        )
        self._jobs[letter.id] = letter
        self._notify(letter.name)

    async def fail_jobs(self, failures: list[Failure]) -> int:
        self.statements += 1
        return sum(
            self._fail(f.job.id, f.job.lease, f.error, f.delay, f.final) is not None
            for f in failures
        )

    def _postpone(self, postponed: list[Postponed]) -> int:
        now = self.clock()
        count = 0
        for p in postponed:
            row = self._held(p.job.id, p.job.lease)
            if row is None:
                continue
            state = JobState.RETRY if row.retry_count > 0 else JobState.CREATED
            other = self._conflict(row, state)
            if other is not None:  # yields to the job already waiting for its key
                self._fail(
                    row.id, row.lease, self._conflict_error(row, other, "snooze", None), None, True
                )
                count += 1
                continue
            try:
                start = now + timedelta(seconds=p.delay)
            except OverflowError as exc:
                error = {
                    "type": "SettlementError",
                    "message": "the job could not be put back in its queue, so it failed for "
                    f"good: {exc}",
                }
                self._fail(row.id, row.lease, error, None, True)
                count += 1
                continue
            row.state = state
            row.start_after, row.waiting = start, p.delay > 0
            row.started_on = row.heartbeat_on = row.lease = None
            count += 1
        return count

    async def postpone(self, postponed: list[Postponed]) -> int:
        self.statements += 1
        return self._postpone(postponed)

    async def heartbeat(self, jobs: list[Job]) -> int:
        self.statements += 1
        now = self.clock()
        count = 0
        for job in jobs:
            row = self._held(job.id, job.lease)
            if row is not None:
                row.heartbeat_on = now
                count += 1
        return count

    async def recover(self, *, default_heartbeat: float, limit: int) -> list[tuple[uuid.UUID, str]]:
        self.statements += 1
        now = self.clock()
        recovered: list[tuple[uuid.UUID, str]] = []
        for row in list(self._jobs.values()):
            if len(recovered) >= limit or row.state is not JobState.ACTIVE:
                continue
            assert row.started_on is not None
            assert row.heartbeat_on is not None
            expired = row.started_on + timedelta(seconds=row.expire_in) < now
            period = row.heartbeat if row.heartbeat is not None else default_heartbeat
            silent = row.heartbeat_on + timedelta(seconds=period) < now
            if not (expired or silent):
                continue
            error = (
                {"message": f"job ran longer than expire_in ({row.expire_in}s)", "type": "Expired"}
                if expired
                else {"message": "worker stopped sending heartbeats", "type": "HeartbeatLost"}
            )
            state = self._fail(row.id, None, error, None, False)
            assert state is not None
            recovered.append((row.id, state))
        return sorted(recovered)

    # ------------------------------------------------------------------ the loop's session

    @contextlib.asynccontextmanager
    async def session(self, *, listen: bool) -> AsyncIterator[MemoryClaimSession]:
        listener = _Listener() if listen else None
        if listener is not None:
            self._listeners.append(listener)
        try:
            yield MemoryClaimSession(self, listener)
        finally:
            if listener is not None:
                self._listeners.remove(listener)


class MemoryClaimSession:
    """The :class:`~insightdesk.shared.queue.ports.ClaimSession` of a :class:`MemoryStore`."""

    def __init__(self, store: MemoryStore, listener: _Listener | None) -> None:
        self._store = store
        self._listener = listener

    async def claim(
        self,
        done: list[Completion],
        wanted: list[ClaimRequest],
        *,
        default_heartbeat: float,
    ) -> Claimed:
        store = self._store
        store.statements += 1
        store._complete(done)  # the session is part of the store
        jobs: list[Job] = []
        for request in wanted:
            if request.limit > 0:
                jobs.extend(store._claim(request, default_heartbeat))
        return Claimed(jobs)

    async def settle(self, failures: list[Failure], postponed: list[Postponed]) -> None:
        if failures:
            await self._store.fail_jobs(failures)
        if postponed:
            await self._store.postpone(postponed)

    async def next_due(self, queues: list[str]) -> dict[str, float]:
        store = self._store
        store.statements += 1
        now = store.clock()
        due: dict[str, float] = {}
        for row in store._jobs.values():
            if row.name in queues and row.state in _QUEUED:
                seconds = max(0.0, (row.start_after - now).total_seconds())
                due[row.name] = min(seconds, due.get(row.name, seconds))
        return due

    async def listen_to(self, queues: Collection[str]) -> None:
        if self._listener is not None:
            self._store.statements += 1
            self._listener.queues = frozenset(queues)

    async def wait(self, wake: asyncio.Event, timeout: float) -> set[str]:
        listener = self._listener
        if listener is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout)
            return set()
        if not listener.notified:
            listener.wake = wake
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout)
            finally:
                listener.wake = None
        notified, listener.notified = listener.notified, set()
        return notified
