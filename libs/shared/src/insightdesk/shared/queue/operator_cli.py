"""Operator commands of ``insightdesk-queue``: ``jobs list|show|retry|cancel|delete``,
``queues pause|resume``, ``workers`` and ``console`` (the dashboard, standalone).

Output is plain aligned tables; bulk actions by filter show a progress bar on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TextIO

from insightdesk.shared.errors import InvalidArgument
from insightdesk.shared.queue.client import QueueClient
from insightdesk.shared.queue.control import QueueControl
from insightdesk.shared.queue.search import ALL_STATES, JobFilter

COMMANDS = ("jobs", "queues", "workers", "console")


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Rows as left-aligned columns under a header and a rule."""
    cells = [[str(c) for c in header]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


class ProgressBar:
    """``[#####.....]  50%  500/1000 matched, 480 changed`` redrawn in place."""

    def __init__(self, total: int, out: TextIO, width: int = 30) -> None:
        self.total = total
        self.out = out
        self.width = width

    def __call__(self, matched: int, affected: int) -> None:
        share = 1.0 if self.total == 0 else min(1.0, matched / self.total)
        filled = round(share * self.width)
        bar = "#" * filled + "." * (self.width - filled)
        self.out.write(
            f"\r[{bar}] {share:4.0%}  {matched}/{self.total} matched, {affected} changed"
        )
        self.out.flush()

    def close(self) -> None:
        self.out.write("\n")
        self.out.flush()


def add_commands(sub: Any) -> None:
    """Register the operator sub-commands on ``insightdesk-queue``'s sub-parsers."""
    jobs = sub.add_parser("jobs", help="find and act on jobs").add_subparsers(
        dest="jobs_command", required=True
    )
    listing = jobs.add_parser("list", help="jobs matching a filter, newest first")
    _filter_args(listing)
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--cursor", type=int, help="next cursor printed by the previous page")
    show = jobs.add_parser("show", help="everything about one job")
    show.add_argument("id")
    for action in ("retry", "cancel", "delete"):
        act = jobs.add_parser(action, help=f"{action} jobs by id or by filter")
        act.add_argument("ids", nargs="*", help="job ids (or use filter options)")
        _filter_args(act)
        act.add_argument("--all", action="store_true", help="allow a filter with no conditions")
        act.add_argument("--batch", type=int, default=500)
    queues = sub.add_parser("queues", help="pause or resume queues").add_subparsers(
        dest="queues_command", required=True
    )
    for action in ("pause", "resume"):
        queues.add_parser(action, help=f"{action} a queue").add_argument("name")
    workers = sub.add_parser("workers", help="who is working on what")
    workers.add_argument("--queue")
    console = sub.add_parser("console", help="serve the operations console (API and dashboard)")
    console.add_argument("--host", default="127.0.0.1")
    console.add_argument("--port", type=int, default=8090)


def _filter_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--queue", action="append", default=[], help="repeatable")
    parser.add_argument("--state", action="append", default=[], choices=ALL_STATES)
    parser.add_argument("--key", help="singleton key")
    parser.add_argument("--id", dest="job_id", help="job id")
    parser.add_argument("--since", type=datetime.fromisoformat, help="created at or after (ISO)")
    parser.add_argument("--until", type=datetime.fromisoformat, help="created before (ISO)")
    parser.add_argument("--data", help="JSON object the job's data contains")


def _filter(args: argparse.Namespace) -> JobFilter:
    return JobFilter.build(
        queues=args.queue,
        states=args.state,
        singleton_key=args.key,
        id=args.job_id,
        since=args.since,
        until=args.until,
        data=args.data,
    )


def _has_conditions(args: argparse.Namespace) -> bool:
    return bool(
        args.queue or args.state or args.key or args.job_id or args.since or args.until or args.data
    )


async def run(args: argparse.Namespace, dsn: str, out: TextIO | None = None) -> None:
    """Run one operator command against ``dsn`` (printing to ``out``, default stdout)."""
    out = out or sys.stdout
    if args.command == "console":
        await serve_console(dsn, args.host, args.port)
        return
    async with QueueClient.connect(dsn) as client:
        control = QueueControl(client)
        if args.command == "workers":
            rows = await control.workers(args.queue)
            print(
                table(
                    ("queue", "host", "pid", "concurrency", "started", "last heartbeat"),
                    [
                        (
                            w.queue,
                            w.host,
                            w.pid,
                            w.concurrency,
                            _t(w.started_on),
                            _t(w.heartbeat_on),
                        )
                        for w in rows
                    ],
                ),
                file=out,
            )
        elif args.command == "queues":
            action = args.queues_command
            await (control.pause if action == "pause" else control.resume)(args.name)
            print(f"queue {args.name} {action}d", file=out)
        else:
            await _jobs(control, args, out)


async def _jobs(control: QueueControl, args: argparse.Namespace, out: TextIO) -> None:
    command = args.jobs_command
    if command == "list":
        page = await control.search(_filter(args), cursor=args.cursor, limit=args.limit)
        print(
            table(
                ("id", "queue", "state", "attempt", "key", "created", "data"),
                [
                    (
                        j.id,
                        j.name,
                        j.state,
                        f"{j.retry_count + 1}/{j.retry_limit + 1}",
                        j.singleton_key,
                        _t(j.created_on),
                        (j.data_preview or "")[:40],
                    )
                    for j in page.jobs
                ],
            ),
            file=out,
        )
        if page.next_cursor is not None:
            print(f"more: --cursor {page.next_cursor}", file=out)
        return
    if command == "show":
        try:
            job_id = uuid.UUID(args.id)
        except ValueError:
            raise InvalidArgument(f"{args.id!r} is not a job id") from None
        job = await control.job(job_id)
        fields = [
            ("id", job.id), ("queue", job.name), ("state", job.state),
            ("attempt", f"{job.retry_count + 1} of {job.retry_limit + 1}"),
            ("singleton key", job.singleton_key), ("created", _t(job.created_on)),
            ("start after", _t(job.start_after)), ("started", _t(job.started_on)),
            ("finished", _t(job.completed_on)), ("trace id", job.trace_id),
            ("data", json.dumps(job.data)), ("headers", json.dumps(job.headers)),
            ("output", json.dumps(job.output)),
        ]  # fmt: skip
        width = max(len(k) for k, _ in fields)
        for key, value in fields:
            print(f"{key.ljust(width)}  {'' if value is None else value}", file=out)
        for error in job.errors:
            detail = error.get("error") or {}
            print(
                f"\nattempt {error['attempt']} failed {error['failed_on']}: "
                f"{detail.get('type', '')}: {detail.get('message', '')}",
                file=out,
            )
            if detail.get("traceback"):
                print(detail["traceback"].rstrip(), file=out)
        return
    if args.ids:
        try:
            ids = [uuid.UUID(i) for i in args.ids]
        except ValueError as exc:
            raise InvalidArgument(f"not a job id: {exc}") from None
        changed = await control.act(command, ids)
        print(f"{len(changed)} of {len(ids)} job(s) {command}", file=out)
        return
    if not (_has_conditions(args) or args.all):
        raise InvalidArgument(f"give job ids, filter options, or --all to {command} every job")
    where = _filter(args)
    bar = ProgressBar(await control.count(where), sys.stderr)
    try:
        result = await control.bulk(command, where, batch=args.batch, progress=bar)
    finally:
        bar.close()
    print(f"{result.affected} of {result.matched} matching job(s) {command}", file=out)


def _t(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value else ""


async def serve_console(dsn: str, host: str, port: int) -> None:
    """The console standalone: token and cookie settings from ``CONSOLE_*`` variables."""
    import uvicorn  # noqa: PLC0415  # only this command serves HTTP

    from insightdesk.shared.ops import ConsoleSettings, create_console_app  # noqa: PLC0415

    settings = ConsoleSettings()
    settings.operator_token()  # refuse to start without a proper token
    async with QueueClient.connect(dsn) as client:
        app = create_console_app(client, settings)
        server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, lifespan="off"))
        print(f"operations console on http://{host}:{port}/", file=sys.stderr)
        await server.serve()


def main_loop(args: argparse.Namespace, dsn: str) -> None:
    asyncio.run(run(args, dsn))
