"""Reports benchmark: digest figures at 10k vs 100k tickets, exports at 100k vs 1M rows.

    uv run python bench/reports_bench.py [--reps 3] [--out bench/results-reports.json]

* Digest: an organization of 10,000 and one of 100,000 tickets (facts written in bulk, as the
  events would have built them); per rep, alternating, the daily figures (yesterday) and the
  weekly set (this week, last week, trend, histogram): wall time and statements run.
* Export: 100,000 and 1,000,000 rows, alternating; each export runs in a fresh worker process
  (the real handler, server-side cursor, writer, local storage) that reports its wall time and
  peak RSS, so memory is measured per export: flat RSS means bounded memory.

Needs PostgreSQL (``DATABASE_URL``, else 127.0.0.1:5432 as postgres). Creates and drops its own
database. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import conninfo, sql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.reports.seed import load_seed, make_seed  # noqa: E402

from insightdesk.reports.digest import WEEKLY, period, report_period, zone  # noqa: E402
from insightdesk.reports.handlers import ReportOptions, export_report  # noqa: E402
from insightdesk.reports.store import PgReportStore, migrate_reports_schema  # noqa: E402
from insightdesk.shared.contracts import ExportFormat, ExportReport  # noqa: E402
from insightdesk.shared.queue import make_pool  # noqa: E402
from insightdesk.shared.storage import LocalStorage  # noqa: E402

NOW = datetime(2026, 3, 30, 6, 0, tzinfo=UTC)
TZ = "Europe/Berlin"

FILL_TICKETS = """
INSERT INTO reports.tickets (
    id, organization_id, subject, status, priority, customer_id, customer_email, customer_name,
    assignee_id, assignee_name, created_at, first_response_at, resolved_at, closed_at, updated_at)
SELECT gen_random_uuid(), %(org)s, 'Ticket ' || g || ', "quoted", =cell',
       (ARRAY['open','pending','resolved','closed'])[1 + g %% 4],
       (ARRAY['low','normal','high','urgent'])[1 + g %% 4],
       gen_random_uuid(), 'c' || g || '@example.com', 'Customer ' || g,
       NULL, NULL,
       %(now)s - (g %% 40000) * interval '1 minute',
       %(now)s - (g %% 40000) * interval '1 minute' + interval '30 minutes',
       NULL, NULL, %(now)s
FROM generate_series(1, %(n)s) AS g
"""


def admin_dsn() -> str:
    return os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"


def with_db(dsn: str, name: str) -> str:
    params = conninfo.conninfo_to_dict(dsn)
    params["dbname"] = name
    return conninfo.make_conninfo("", **params)


async def prepare(dsn: str) -> dict[str, uuid.UUID]:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await migrate_reports_schema(conn)
        orgs: dict[str, uuid.UUID] = {}
        for n in (10_000, 100_000):
            t0 = time.perf_counter()
            seed = make_seed(n, now=NOW, time_zone=TZ, seed=n)
            await load_seed(conn, seed, name=f"org-{n}")
            orgs[f"digest-{n}"] = seed.organization_id
            print(f"seeded digest org of {n:,} tickets in {time.perf_counter() - t0:.1f}s")
        for n in (100_000, 1_000_000):
            org = uuid.uuid4()
            t0 = time.perf_counter()
            await conn.execute(FILL_TICKETS, {"org": org, "now": NOW, "n": n})
            orgs[f"export-{n}"] = org
            print(f"seeded export org of {n:,} rows in {time.perf_counter() - t0:.1f}s")
        await conn.execute("VACUUM ANALYZE reports.tickets")
        await conn.execute("VACUUM ANALYZE reports.ticket_events")
    return orgs


async def digest_once(dsn: str, org: uuid.UUID) -> dict[str, float]:
    pool = make_pool(dsn, min_size=1, max_size=2)
    await pool.open()
    try:
        store = PgReportStore(pool)
        tz = zone(TZ)
        t0 = time.perf_counter()
        await store.figures(org, period(date(2026, 3, 29), 1, tz), NOW)
        daily_s, daily_q = time.perf_counter() - t0, store.queries
        store.queries = 0
        t0 = time.perf_counter()
        span = report_period(WEEKLY, date(2026, 3, 23), tz)
        await store.figures(org, span, NOW)
        await store.figures(org, report_period(WEEKLY, date(2026, 3, 16), tz), NOW)
        await store.trend(org, span, TZ)
        await store.response_histogram(org, span)
        return {
            "daily_s": daily_s,
            "daily_queries": daily_q,
            "weekly_s": time.perf_counter() - t0,
            "weekly_queries": store.queries,
        }
    finally:
        await pool.close()


async def export_worker(dsn: str, org: str, fmt: str) -> None:
    """One export in this process; prints wall time, rows and peak RSS as JSON."""
    pool = make_pool(dsn, min_size=1, max_size=2)
    await pool.open()

    async def publish(message: Any, conn: Any) -> None:
        return None

    with tempfile.TemporaryDirectory() as folder:
        try:
            store = PgReportStore(pool, publish)
            command = ExportReport(
                export_id=uuid.uuid4(),
                organization_id=uuid.UUID(org),
                requested_by=uuid.uuid4(),
                requester_email="bench@example.com",
                format=ExportFormat(fmt),
            )
            options = ReportOptions(signing_key=b"b" * 32, work_dir=Path(folder))
            t0 = time.perf_counter()
            ready = await export_report(
                command,
                NOW,
                store=store,
                storage=LocalStorage(Path(folder) / "store"),
                options=options,
            )
            seconds = time.perf_counter() - t0
        finally:
            await pool.close()
    peak_kb = peak_rss_kb()
    print(
        json.dumps(
            {
                "rows": ready.rows,
                "bytes": ready.size_bytes,
                "seconds": seconds,
                "peak_rss_mb": peak_kb / 1024,
            }
        )
    )


def peak_rss_kb() -> int:
    """This process's peak resident set (``VmHWM``: reset at exec, unlike ``ru_maxrss``, which
    Linux carries over from the forking parent)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run_export(dsn: str, org: uuid.UUID, fmt: str) -> dict[str, Any]:
    out = subprocess.run(  # this script, no shell
        [sys.executable, __file__, "_export", dsn, str(org), fmt],
        check=True,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "_export":
        asyncio.run(export_worker(sys.argv[2], sys.argv[3], sys.argv[4]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--xlsx-reps", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results-reports.json")
    args = parser.parse_args()
    admin = admin_dsn()
    name = f"reports_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = with_db(admin, name)
    try:
        orgs = asyncio.run(prepare(dsn))
        digest: dict[int, list[dict[str, float]]] = {10_000: [], 100_000: []}
        exports: dict[str, list[dict[str, Any]]] = {}
        for rep in range(args.reps):
            for n in (10_000, 100_000):  # baseline and variant alternate
                digest[n].append(asyncio.run(digest_once(dsn, orgs[f"digest-{n}"])))
            for n in (100_000, 1_000_000):
                exports.setdefault(f"csv-{n}", []).append(
                    run_export(dsn, orgs[f"export-{n}"], "csv")
                )
            if rep < args.xlsx_reps:
                for n in (100_000, 1_000_000):
                    exports.setdefault(f"xlsx-{n}", []).append(
                        run_export(dsn, orgs[f"export-{n}"], "xlsx")
                    )
            print(f"rep {rep + 1}/{args.reps} done", flush=True)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    print("\nDigest (median of reps; statements per run)")
    print("| tickets | daily ms | daily queries | weekly ms | weekly queries |")
    print("|---|---|---|---|---|")
    for n, runs in digest.items():
        print(
            f"| {n:,} | {median([r['daily_s'] for r in runs]) * 1000:.0f} "
            f"| {int(runs[0]['daily_queries'])} "
            f"| {median([r['weekly_s'] for r in runs]) * 1000:.0f} "
            f"| {int(runs[0]['weekly_queries'])} |"
        )
    print("\nExport (median of reps; each export in a fresh process)")
    print("| format, rows | wall s | rows/s | MB written | peak RSS MB |")
    print("|---|---|---|---|---|")
    for key, runs in exports.items():
        seconds = median([r["seconds"] for r in runs])
        print(
            f"| {key} | {seconds:.1f} | {runs[0]['rows'] / seconds:,.0f} "
            f"| {runs[0]['bytes'] / 1e6:.0f} | {median([r['peak_rss_mb'] for r in runs]):.0f} |"
        )
    for fmt in ("csv", "xlsx"):
        small, big = exports.get(f"{fmt}-100000"), exports.get(f"{fmt}-1000000")
        if small and big:
            ratio = median([r["peak_rss_mb"] for r in big]) / median(
                [r["peak_rss_mb"] for r in small]
            )
            print(f"{fmt}: peak RSS 1M / 100k = {ratio:.2f} (flat = bounded memory)")
    args.out.write_text(
        json.dumps({"digest": {str(k): v for k, v in digest.items()}, "exports": exports}, indent=2)
    )
    print(f"\nJSON: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
