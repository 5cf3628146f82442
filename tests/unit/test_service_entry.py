"""The shared service entry without I/O: the clock, readiness with watched loops, the ops ASGI
routes, the loop that survives errors, and the command line's exit codes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter
from pydantic import Field

from insightdesk.shared.clock import Clock, FakeClock, SystemClock
from insightdesk.shared.health import ASGIApp, Health, Receive, Scope, Send, ops_app
from insightdesk.shared.queue.tasks import Loops
from insightdesk.shared.service import Process, ProcessContext, Service, keep_running
from insightdesk.shared.settings import ServiceSettings


def test_the_system_clock_is_aware_utc_and_the_fake_one_moves_only_when_told() -> None:
    assert isinstance(SystemClock(), Clock) and isinstance(FakeClock(), Clock)
    assert SystemClock().now().tzinfo is UTC
    fake = FakeClock(datetime(2026, 3, 1, 12, tzinfo=UTC))
    assert fake.now() == fake.now() == datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert fake.advance(90) == datetime(2026, 3, 1, 12, 1, 30, tzinfo=UTC)
    fake.advance(timedelta(days=1))
    assert fake.now() == datetime(2026, 3, 2, 12, 1, 30, tzinfo=UTC)
    with pytest.raises(ValueError, match="backwards"):
        fake.advance(-1)
    with pytest.raises(ValueError, match="naive"):
        fake.set(datetime(2026, 1, 1))  # noqa: DTZ001  # the point of the test


async def http_get(app: ASGIApp, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as http:
        return await http.get(path)


async def test_readiness_names_each_check_and_fails_on_a_failing_or_raising_one() -> None:
    health = Health(check_timeout=0.2)
    state = {"db": True}

    async def database() -> bool:
        return state["db"]

    async def broken() -> bool:
        raise OSError("connection refused")

    health.add_check("database", database)
    app = ops_app(health, CollectorRegistry())
    ready = await http_get(app, "/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ready", "database": "ok"}

    state["db"] = False
    health.add_check("broker", broken)
    down = await http_get(app, "/readyz")
    assert down.status_code == 503
    assert down.json() == {
        "status": "not ready",
        "database": "unavailable",
        "broker": "unavailable",
    }
    assert (await http_get(app, "/healthz")).status_code == 200


async def test_a_watched_loop_that_dies_takes_readiness_down_for_good() -> None:
    health = Health()

    async def crashes() -> None:
        await asyncio.sleep(0)
        raise RuntimeError("boom")

    async def runs() -> None:
        await asyncio.sleep(3600)

    alive = health.watch("steady", asyncio.create_task(runs()))
    assert (await health.report()) == (True, {"loop:steady": "ok"})
    dead = health.watch("cron", asyncio.create_task(crashes()))
    await asyncio.gather(dead, return_exceptions=True)
    await asyncio.sleep(0)
    ready, parts = await health.report()
    assert not ready and parts["loop:cron"].startswith("crashed: RuntimeError('boom')")
    health.stopping()
    alive.cancel()
    await asyncio.gather(alive, return_exceptions=True)
    ready, parts = await health.report()
    assert not ready and parts["loop:steady"] == "ok" and parts["process"] == "stopping"


class _Escape(BaseException):
    """What no loop guard catches: the loop dies."""


async def test_a_dead_engine_loop_takes_readiness_down_and_is_reported() -> None:
    health, loops = Health(), Loops()
    deaths: list[str] = []
    health.on_death(lambda name, reason: deaths.append(name))
    health.watch_loops(loops)
    assert (await health.report()) == (True, {"loop:queue": "ok"})

    async def dies() -> None:
        await asyncio.sleep(0)
        raise _Escape

    await asyncio.gather(loops.spawn("consumer", dies()), return_exceptions=True)
    await asyncio.sleep(0)
    ready, parts = await health.report()
    assert not ready and parts["loop:queue"].startswith("consumer crashed: _Escape")
    assert deaths == ["queue:consumer"]


async def test_metrics_run_the_scrape_hooks_and_other_paths_reach_the_inner_app() -> None:
    health, registry = Health(), CollectorRegistry()
    scrapes = Counter("scrapes", "scrape hook calls", registry=registry)

    async def hook() -> None:
        scrapes.inc()

    async def failing_hook() -> None:
        raise OSError("database gone")

    health.scrape_hooks.extend([failing_hook, hook])

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        body = json.dumps({"path": scope["path"]}).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    app = ops_app(health, registry, inner)
    metrics = await http_get(app, "/metrics")
    assert metrics.status_code == 200 and "scrapes_total 1.0" in metrics.text
    assert (await http_get(app, "/schedules")).json() == {"path": "/schedules"}
    assert (await http_get(ops_app(health, registry), "/schedules")).status_code == 404


async def test_a_loop_survives_failures_with_backoff_and_goes_on() -> None:
    calls: list[int] = []
    recovered = asyncio.Event()

    async def flaky() -> None:
        calls.append(len(calls))
        if len(calls) <= 2:
            raise OSError("database restarting")
        if len(calls) >= 5:
            recovered.set()

    task = asyncio.create_task(keep_running("flaky", 0.001, flaky, max_backoff=0.01))
    await asyncio.wait_for(recovered.wait(), 10)
    assert not task.done()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()


class DemoSettings(ServiceSettings):
    workers: int = Field(default=1, ge=1)


def demo_service(log: list[str]) -> Service[DemoSettings]:
    @asynccontextmanager
    async def process(settings: DemoSettings, ctx: ProcessContext) -> AsyncIterator[None]:
        log.append(ctx.process)
        yield None

    async def migrate(settings: DemoSettings) -> None:
        log.append("migrate")

    return Service(
        name="demo",
        settings=DemoSettings,
        migrate=migrate,
        processes=[Process("api", process), Process("worker", process, port=lambda s: 1)],
    )


def test_migrate_runs_the_services_step_and_exits_0() -> None:
    log: list[str] = []
    assert demo_service(log).main(["migrate"]) == 0
    assert log == ["migrate"]


def test_invalid_settings_exit_2_naming_the_field(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WORKERS", "0")
    log: list[str] = []
    assert demo_service(log).main(["run"]) == 2
    assert "workers" in capsys.readouterr().err and log == []


def test_a_process_whose_watched_loop_dies_ends_with_exit_1(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTP_PORT", "0")

    @asynccontextmanager
    async def process(settings: DemoSettings, ctx: ProcessContext) -> AsyncIterator[None]:
        loops = Loops()
        ctx.watch_queue(loops)

        async def dies() -> None:
            await asyncio.sleep(0.3)
            raise _Escape

        task = loops.spawn("heartbeats", dies())
        yield None
        await asyncio.gather(task, return_exceptions=True)

    async def migrate(settings: DemoSettings) -> None:
        return None

    service = Service(
        name="demo", settings=DemoSettings, migrate=migrate, processes=[Process("run", process)]
    )
    assert service.main(["run"]) == 1


def test_processes_are_commands_with_their_own_port_and_tracing_name() -> None:
    service = demo_service([])
    settings = DemoSettings()
    api, worker = service.processes
    assert service.process("worker") is worker
    assert (api.port_of(settings), worker.port_of(settings)) == (settings.http_port, 1)
    assert (service.label(api), service.label(worker)) == ("demo", "demo-worker")
    with pytest.raises(SystemExit):
        service.main(["nonsense"])


def test_the_public_surface_of_the_service_entry() -> None:
    from insightdesk.shared import clock, service  # noqa: PLC0415

    assert sorted(service.__all__) == [
        "Process",
        "ProcessContext",
        "Service",
        "keep_running",
        "migrate_service",
    ]
    assert sorted(clock.__all__) == ["Clock", "FakeClock", "SystemClock"]
