"""``insightdesk-run``: the whole stack on one machine, for development.

Starts an embedded PostgreSQL when ``DATABASE_URL`` is unset, applies every schema's
migrations, then starts each service process as its own OS process
(``python -m insightdesk.<service> [<process>]``): tickets API (base port), email (+1),
scheduler (+2), tickets worker (+3); +4 and +5 are kept for the SLA and reports services.
prints where the API docs are and where mail lands, and on Ctrl-C (or SIGTERM) stops the
services gracefully — SIGTERM, a grace period, then SIGKILL — and the database last. If a
service dies, the runner stops the rest and exits non-zero rather than limping on.

The runner never imports a service: it only spawns them, so the shared library stays
independent of the services.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from insightdesk.shared.db import dsn_from_env, start_embedded


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    port_env: str
    port: int
    extra_env: tuple[tuple[str, str], ...] = ()
    process: str | None = None
    """The service's process to run (``worker``); None: its default (``run``)."""

    @property
    def label(self) -> str:
        return self.name if self.process is None else f"{self.name}-{self.process}"

    @property
    def command(self) -> list[str]:
        return [sys.executable, "-m", f"insightdesk.{self.name}", self.process or "run"]


def default_services(data: Path, base_port: int) -> list[ServiceSpec]:
    mail_dir = str(data / "mail")
    storage_dir = str(data / "storage")
    return [
        ServiceSpec("tickets", "TICKETS_HTTP_PORT", base_port),
        ServiceSpec(
            "email",
            "EMAIL_HTTP_PORT",
            base_port + 1,
            (
                ("EMAIL_PROVIDER", "file"),
                ("EMAIL_OUTBOX_DIR", mail_dir),
                ("EMAIL_STORAGE_DIR", storage_dir),
            ),
        ),
        ServiceSpec("scheduler", "SCHEDULER_HTTP_PORT", base_port + 2),
        ServiceSpec("tickets", "TICKETS_WORKER_HTTP_PORT", base_port + 3, process="worker"),
        ServiceSpec("sla", "SLA_HTTP_PORT", base_port + 4),
        ServiceSpec(
            "reports",
            "REPORTS_HTTP_PORT",
            base_port + 5,
            (
                ("REPORTS_STORAGE_DIR", storage_dir),
                ("REPORTS_PUBLIC_BASE_URL", f"http://127.0.0.1:{base_port + 5}"),
            ),
        ),
    ]


class Stack:
    def __init__(self, services: Sequence[ServiceSpec], env: dict[str, str], grace: float) -> None:
        self.services = services
        self.env = env
        self.grace = grace
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def migrate(self) -> None:
        for name in dict.fromkeys(spec.name for spec in self.services):
            subprocess.run(  # noqa: S603  # our own module, no shell
                [sys.executable, "-m", f"insightdesk.{name}", "migrate"],
                env=self.env,
                check=True,
                timeout=120,
            )

    def start(self) -> None:
        for spec in self.services:
            env = {**self.env, spec.port_env: str(spec.port), **dict(spec.extra_env)}
            self.procs[spec.label] = subprocess.Popen(  # noqa: S603  # our own module, no shell
                spec.command, env=env
            )

    def first_exited(self) -> str | None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                return name
        return None

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="insightdesk-run", description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=Path(".local"))
    parser.add_argument("--grace", type=float, default=20.0, help="seconds to drain on stop")
    parser.add_argument(
        "--base-port", type=int, default=8000, help="tickets API port; the next ports follow"
    )
    args = parser.parse_args(argv)
    data: Path = args.data_dir.resolve()
    spans = data / "traces"
    dsn = dsn_from_env()
    embedded = None
    if dsn is None:
        embedded = start_embedded(data / "postgres")
        dsn = embedded.dsn
        print(f"DATABASE_URL is unset: embedded PostgreSQL in {data / 'postgres'}")
    token = os.environ.get("SCHEDULER_OPERATOR_TOKEN") or secrets.token_urlsafe(24)
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "INSIGHTDESK_SPANS_DIR": str(spans),
        "SCHEDULER_OPERATOR_TOKEN": token,
    }
    services = default_services(data, args.base_port)
    stack = Stack(services, env, args.grace)
    stopping = False

    def request_stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    code = 0
    try:
        stack.migrate()
        stack.start()
        for spec in services:
            print(f"{spec.label:<15} http://127.0.0.1:{spec.port}  (/healthz, /readyz, /metrics)")
        print(f"ticket API docs: http://127.0.0.1:{args.base_port}/docs")
        print(f"schedules:       http://127.0.0.1:{args.base_port + 2}/schedules")
        print("fire one now:    POST /schedules/<name>/run, Bearer $SCHEDULER_OPERATOR_TOKEN")
        print("                 (set it before starting; otherwise a random one is used)")
        print(f"mail lands in:   {data / 'mail'} (one .eml file per message)")
        print(f"traces:          {spans}")
        print("Ctrl-C stops everything.", flush=True)
        while not stopping:
            dead = stack.first_exited()
            if dead is not None:
                print(f"service {dead} exited; stopping the stack", file=sys.stderr)
                code = 1
                break
            time.sleep(0.2)
    except subprocess.CalledProcessError as exc:
        print(f"migration failed: {exc}", file=sys.stderr)
        code = 1
    finally:
        stack.stop()
        if embedded is not None:
            embedded.stop()
    return code


if __name__ == "__main__":
    raise SystemExit(main())
