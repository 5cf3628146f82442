"""One entry for every service: ``python -m insightdesk.<service> [run|migrate|<process>]``.

A service declares itself once, in its ``__main__.py``, and gets the same commands, settings
handling, logging, tracing, HTTP health/metrics, signal handling and exit codes as every other::

    # services/scheduler/src/insightdesk/scheduler/__main__.py
    from insightdesk.scheduler.app import scheduler_process
    from insightdesk.scheduler.settings import SchedulerSettings
    from insightdesk.shared.service import Process, Service, migrate_service

    async def migrate(settings: SchedulerSettings) -> None:
        await migrate_service(
            settings.require_database_url(), queue_schema=settings.queue_schema,
            schema="scheduler", package="insightdesk.scheduler",
        )

    SERVICE = Service(
        name="scheduler",
        settings=SchedulerSettings,
        migrate=migrate,
        processes=[Process("scheduler", scheduler_process)],
    )

    if __name__ == "__main__":
        raise SystemExit(SERVICE.main())

Commands: ``migrate`` applies the queue schema's and the service's own migrations and declares
its queues, then exits 0. ``run`` (the default) starts the first process; a service with several
processes (tickets: ``api`` and ``worker``) also takes each process's name as a command.

A process is an async context manager factory ``run(settings, ctx)``: on entry it opens *its
own* pools and starts its loops (``ctx.every(...)``, and the queue engine's through
``ctx.watch_queue(client_or_broker.loops)`` — watched, so a dead loop takes readiness down and
ends the process with exit code 1), registers readiness checks on ``ctx.health`` and metrics on
``ctx.registry``, and yields its ASGI app (or None when it has no routes of its own). The entry
serves that app under uvicorn behind :func:`insightdesk.shared.health.ops_app` (``/healthz``,
``/readyz``, ``/metrics``) on the process's port. SIGTERM or Ctrl-C: readiness goes down, HTTP
stops accepting and drains (up to ``shutdown_timeout``), the app's lifespan ends, the loops are
cancelled, the context exits (pools closed) and the process exits 0. A watched loop that dies
stops the process the same way, with exit 1. Exit 2: invalid settings (the message names the
field); exit 1: a project error at start-up (e.g. no ``DATABASE_URL``, a database that cannot
be reached).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, Generic, TypeVar

import psycopg
import uvicorn
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry
from pydantic import ValidationError
from pydantic_settings import SettingsError

from insightdesk.shared.clock import Clock, SystemClock
from insightdesk.shared.errors import ConfigurationError, DatabaseError, InsightDeskError
from insightdesk.shared.health import ASGIApp, Health, LoopGroup, ops_app
from insightdesk.shared.migrations import load_migrations, migrate_schema
from insightdesk.shared.queue.client import QueueClient
from insightdesk.shared.queue.migrator import migrate as migrate_queue_schema
from insightdesk.shared.settings import ServiceSettings
from insightdesk.shared.telemetry import configure_tracing

__all__ = [
    "Process",
    "ProcessContext",
    "Service",
    "keep_running",
    "migrate_service",
]

S = TypeVar("S", bound=ServiceSettings)
log = logging.getLogger(__name__)
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@dataclass
class ProcessContext:
    """What the entry builds for a process before starting it, shared with its parts."""

    service: str
    process: str
    clock: Clock
    health: Health
    registry: CollectorRegistry
    tracer_provider: TracerProvider
    loops: dict[str, asyncio.Task[None]] = field(default_factory=dict)

    def every(
        self,
        name: str,
        interval: float,
        action: Callable[[], Awaitable[object]],
        *,
        max_backoff: float = 60.0,
    ) -> asyncio.Task[None]:
        """Run ``action`` every ``interval`` seconds in a watched task (:func:`keep_running`)."""
        task = asyncio.create_task(
            keep_running(name, interval, action, max_backoff=max_backoff), name=name
        )
        self.loops[name] = task
        self.health.watch(name, task)
        return task

    def watch_queue(self, loops: LoopGroup) -> None:
        """Watch the queue engine's loops (a ``QueueClient``'s or ``PgBroker``'s ``loops``)."""
        self.health.watch_loops(loops)

    async def stop_loops(self) -> None:
        """Cancel the loops started with :meth:`every` and wait for them (idempotent)."""
        self.health.stopping()
        tasks, self.loops = list(self.loops.values()), {}
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def keep_running(
    name: str,
    interval: float,
    action: Callable[[], Awaitable[object]],
    *,
    max_backoff: float = 60.0,
) -> None:
    """Call ``action`` every ``interval`` seconds, forever. A failure is logged (a bug at ERROR
    with its traceback) and retried with exponential backoff (capped at ``max_backoff``): a
    database restart must not end the loop."""
    failures = 0
    while True:
        try:
            await action()
            failures, delay = 0, interval
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any failure is retried; the loop must survive
            failures += 1
            delay = min(max_backoff, max(interval, 0.5) * 2 ** min(failures, 8))
            if isinstance(exc, InsightDeskError | OSError | psycopg.Error):
                log.warning(
                    "%s failed (%d in a row, next try in %.1fs): %r", name, failures, delay, exc
                )
            else:  # not an error we expect: a bug, said loudly with its traceback
                log.exception(
                    "%s failed unexpectedly (%d in a row, next try in %.1fs)",
                    name,
                    failures,
                    delay,
                )
        await asyncio.sleep(delay)


ProcessRun = Callable[[S, ProcessContext], AbstractAsyncContextManager[ASGIApp | None]]


@dataclass(frozen=True)
class Process(Generic[S]):
    """One kind of process of a service: its command name and how to run it."""

    name: str
    run: ProcessRun[S]
    description: str = ""
    port: Callable[[S], int] | None = None
    """Where it serves HTTP; default ``settings.http_port``."""

    def port_of(self, settings: S) -> int:
        return settings.http_port if self.port is None else self.port(settings)


@dataclass(frozen=True)
class Service(Generic[S]):
    """A service's declaration: its settings class, migrate step and processes."""

    name: str
    settings: Callable[[], S]
    migrate: Callable[[S], Coroutine[Any, Any, None]]
    processes: Sequence[Process[S]]
    description: str = ""
    clock: Callable[[], Clock] = SystemClock

    def main(self, argv: Sequence[str] | None = None) -> int:
        """Parse the command line, load the settings once, run the command; the exit code."""
        names = [p.name for p in self.processes]
        commands = ["run", "migrate", *(n for n in names if n not in {"run", "migrate"})]
        parser = argparse.ArgumentParser(
            prog=f"python -m insightdesk.{self.name}",
            description=self.description or None,
            epilog="processes: "
            + "; ".join(
                f"{p.name}: {p.description}" if p.description else p.name for p in self.processes
            )
            + f". run = {names[0]}.",
        )
        parser.add_argument("command", nargs="?", choices=commands, default="run")
        args = parser.parse_args(argv)
        try:
            settings = self.settings()
        except (ValidationError, SettingsError, ConfigurationError) as exc:
            print(f"{self.name}: invalid settings: {exc}", file=sys.stderr)
            return 2
        logging.basicConfig(level=settings.log_level, format=LOG_FORMAT)
        try:
            if args.command == "migrate":
                asyncio.run(self.migrate(settings))
                log.info("%s: database migrated", self.name)
                return 0
            process = self.processes[0] if args.command == "run" else self.process(args.command)
            return serve(self, process, settings)
        except InsightDeskError as exc:
            log.error("%s: %s", self.name, exc)  # noqa: TRY400  # the message says it all
            return 1

    def process(self, name: str) -> Process[S]:
        for process in self.processes:
            if process.name == name:
                return process
        raise ConfigurationError(f"{self.name} has no process {name!r}")

    def label(self, process: Process[S]) -> str:
        """The tracing service name and spans file stem: ``tickets``, ``tickets-worker``."""
        return self.name if process is self.processes[0] else f"{self.name}-{process.name}"


class _Signals:
    """SIGTERM/SIGINT before uvicorn runs end start-up at once; while it runs, uvicorn owns them
    (graceful shutdown) and afterwards re-raises them here, where they are already handled."""

    def __init__(self) -> None:
        self.server: uvicorn.Server | None = None
        self.finished = False
        self.failed = False

    def fail(self, name: str, reason: str) -> None:
        """A watched loop died: stop the process (gracefully) and exit 1."""
        self.failed = True
        if self.server is not None:
            self.server.should_exit = True

    def install(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.finished:
            return
        if self.server is not None:
            self.server.should_exit = True
            return
        raise SystemExit(0)


def serve(service: Service[S], process: Process[S], settings: S) -> int:
    """Run ``process`` until SIGTERM/SIGINT; 0 after a clean stop."""
    signals = _Signals()
    signals.install()
    return asyncio.run(_serve(service, process, settings, signals))


async def _serve(service: Service[S], process: Process[S], settings: S, signals: _Signals) -> int:
    label = service.label(process)
    provider = configure_tracing(
        label,
        spans_file=None if settings.spans_dir is None else settings.spans_dir / f"{label}.jsonl",
        otlp_endpoint=settings.otlp_endpoint,
    )
    ctx = ProcessContext(
        service=service.name,
        process=process.name,
        clock=service.clock(),
        health=Health(),
        registry=CollectorRegistry(),
        tracer_provider=provider,
    )
    ctx.health.on_death(signals.fail)
    started = False
    try:
        async with process.run(settings, ctx) as inner:
            try:
                config = uvicorn.Config(
                    ops_app(ctx.health, ctx.registry, inner),
                    host=settings.http_host,
                    port=process.port_of(settings),
                    lifespan="on",
                    log_config=None,  # keep the logging configured by the entry
                    timeout_graceful_shutdown=max(1, math.ceil(settings.shutdown_timeout)),
                    proxy_headers=False,
                )
                server = uvicorn.Server(config)
                signals.server = server
                server.should_exit = signals.failed  # a loop died while the process started
                await server.serve()
                started = server.started
            finally:
                signals.finished = True
                await ctx.stop_loops()
    finally:
        provider.shutdown()
    if signals.failed:
        log.error("%s: stopped because a watched loop died", label)
        return 1
    log.info("%s: stopped", label)
    return 0 if started else 1


async def migrate_service(
    dsn: str,
    *,
    queue_schema: str = "queue",
    schema: str | None = None,
    package: str | None = None,
    declare: Callable[[QueueClient], Awaitable[None]] | None = None,
) -> None:
    """The ``migrate`` command's work: the queue schema, the service's own schema (its
    ``<package>/migrations/NNNN_*.sql``) and the queues it sends to or consumes (``declare``),
    so jobs sent before the service first runs are kept. Safe to run from many processes."""
    try:
        conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    except psycopg.Error as exc:
        raise DatabaseError(f"cannot connect to the database: {exc}") from exc
    async with conn:
        await migrate_queue_schema(conn, queue_schema)
        if schema is not None and package is not None:
            await migrate_schema(conn, schema, load_migrations(package, "migrations", schema))
    if declare is not None:
        async with QueueClient.connect(
            dsn, schema=queue_schema, min_size=1, max_size=1, migrate_schema=False
        ) as client:
            await declare(client)
