"""Liveness, readiness and metrics of a service process, the same for every service.

:class:`Health` collects what readiness means for one process: named checks (the database
answers, the broker runs) and the long-lived loops it watches: its own tasks (:meth:`Health.watch`)
and the queue engine's (:meth:`Health.watch_loops`: claims, heartbeats, recovery, maintenance,
cron). A watched loop that ends for any reason but shutdown takes readiness down for good, is
logged and is reported to the :meth:`Health.on_death` listeners; the service entry then ends
the process with exit code 1 (STYLE rule 19): a process that looks healthy while doing nothing
is the worst failure. :func:`ops_app` serves

* ``GET /healthz`` — 200 while the process serves HTTP;
* ``GET /readyz`` — 200 when every check passes and every watched loop runs, else 503, with a
  JSON body naming each part (``{"status": "ready", "database": "ok", "loop:cron": "ok"}``);
* ``GET /metrics`` — the process's Prometheus registry (scrape hooks refresh gauges first);

and hands every other request (and the ASGI lifespan) to the process's own app, if it has one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Protocol

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)

Check = Callable[[], Awaitable[bool]]
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
OPS_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
DeathListener = Callable[[str, str], None]


class LoopGroup(Protocol):
    """A set of loops that reports its deaths (the engine's
    :class:`~insightdesk.shared.queue.tasks.Loops`)."""

    def on_death(self, listener: DeathListener, /) -> None: ...


class Health:
    """Readiness of one process: checks, watched loops and a shutdown flag."""

    def __init__(self, *, check_timeout: float = 2.0) -> None:
        self.check_timeout = check_timeout
        self._checks: dict[str, Check] = {}
        self._loops: dict[str, asyncio.Task[Any]] = {}
        self._dead: dict[str, str] = {}
        self._groups: dict[str, dict[str, str]] = {}
        self._listeners: list[DeathListener] = []
        self._stopping = False
        self.scrape_hooks: list[Callable[[], Awaitable[None]]] = []

    def add_check(self, name: str, check: Check) -> None:
        """``check`` returns True when its part is usable; errors and timeouts count as False."""
        self._checks[name] = check

    def watch(self, name: str, task: asyncio.Task[Any]) -> asyncio.Task[Any]:
        """Watch a long-lived loop: if it ends before shutdown, readiness goes down for good."""
        self._loops[name] = task
        task.add_done_callback(lambda t: self._ended(name, t))
        return task

    def watch_loops(self, group: LoopGroup, name: str = "queue") -> None:
        """Watch a group of loops (e.g. a queue client's ``loops``): one that dies before
        shutdown takes readiness down for good (reported as ``loop:<name>``)."""
        dead = self._groups.setdefault(name, {})

        def died(loop: str, reason: str) -> None:
            if self._stopping:
                return
            dead[loop] = reason
            self._died(f"{name}:{loop}", reason)

        group.on_death(died)

    def on_death(self, listener: DeathListener) -> None:
        """Call ``listener(name, reason)`` when a watched loop dies before shutdown."""
        self._listeners.append(listener)

    def _ended(self, name: str, task: asyncio.Task[Any]) -> None:
        if self._stopping:
            return
        if task.cancelled():
            reason = "cancelled"
        elif task.exception() is not None:
            reason = f"crashed: {task.exception()!r}"
        else:
            reason = "returned"
        self._dead[name] = reason
        self._died(name, reason)

    def _died(self, name: str, reason: str) -> None:
        log.error("loop %s %s; the process is no longer ready", name, reason)
        for listener in list(self._listeners):
            try:
                listener(name, reason)
            except Exception:
                log.exception("a listener of the death of loop %s failed", name)

    def stopping(self) -> None:
        """Shutdown began: not ready any more, and loops ending now are expected."""
        self._stopping = True

    @property
    def dead_loops(self) -> dict[str, str]:
        return dict(self._dead)

    async def report(self) -> tuple[bool, dict[str, str]]:
        """Whether the process is ready, and the state of each part."""
        parts: dict[str, str] = {}
        names = list(self._checks)
        results = await asyncio.gather(*(self._run(self._checks[n]) for n in names))
        parts.update(
            {n: "ok" if ok else "unavailable" for n, ok in zip(names, results, strict=True)}
        )
        for name in self._loops:
            parts[f"loop:{name}"] = self._dead.get(name, "ok")
        for name, dead in self._groups.items():
            parts[f"loop:{name}"] = (
                "; ".join(f"{loop} {reason}" for loop, reason in sorted(dead.items())) or "ok"
            )
        ready = not self._stopping and all(v == "ok" for v in parts.values())
        if self._stopping:
            parts["process"] = "stopping"
        return ready, parts

    async def _run(self, check: Check) -> bool:
        try:
            async with asyncio.timeout(self.check_timeout):
                return bool(await check())
        except Exception:  # noqa: BLE001  # any failure of a probe means "not ready", never a 500
            return False


def ops_app(health: Health, registry: CollectorRegistry, inner: ASGIApp | None = None) -> ASGIApp:
    """ASGI app answering ``/healthz``, ``/readyz`` and ``/metrics``; the rest goes to ``inner``
    (404 without one). The lifespan goes to ``inner`` too, or is acknowledged here."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http" and scope["path"] in OPS_PATHS and scope["method"] in {"GET", "HEAD"}:
            await _ops(scope["path"], health, registry, send)
        elif inner is not None:
            await inner(scope, receive, send)
        elif kind == "lifespan":
            await _plain_lifespan(receive, send)
        elif kind == "http":
            await _respond(send, 404, b'{"detail": "Not Found"}', "application/json")

    return app


async def _ops(path: str, health: Health, registry: CollectorRegistry, send: Send) -> None:
    if path == "/healthz":
        await _respond(send, 200, b"ok", "text/plain")
    elif path == "/readyz":
        ready, parts = await health.report()
        body = json.dumps({"status": "ready" if ready else "not ready", **parts}).encode()
        await _respond(send, 200 if ready else 503, body, "application/json")
    else:
        for hook in health.scrape_hooks:
            # a failed refresh serves what was last read: the scrape itself must not fail
            with contextlib.suppress(Exception):
                await hook()
        await _respond(send, 200, generate_latest(registry), CONTENT_TYPE_LATEST)


async def _respond(send: Send, status: int, body: bytes, content_type: str) -> None:
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _plain_lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
