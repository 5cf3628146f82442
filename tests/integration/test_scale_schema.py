"""The engine at scale (issue 7, schema half): waiting jobs off the claim path, counters behind
stats() and ready_count(), maintenance by index in batches, and the in-place upgrade from v2."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql

from insightdesk.shared.migrations import migrate_schema
from insightdesk.shared.queue import JobOptions, JobState, QueueClient, QueueOptions, QueuePolicy
from insightdesk.shared.queue import supervisor as supervisor_module
from insightdesk.shared.queue.control import QueueControl
from insightdesk.shared.queue.migrator import LATEST_VERSION, migrations
from insightdesk.shared.queue.ports import ClaimRequest, Completion

from .helpers import scratch_database, wait_until


async def _one(dsn: str, query: str, params: Any = None) -> Any:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cur = await conn.execute(query, params)
        row = await cur.fetchone()
        assert row is not None
        return row[0]


async def _db_now(dsn: str) -> datetime:
    now: datetime = await _one(dsn, "SELECT clock_timestamp()")
    return now


async def _counts_by_scan(dsn: str) -> dict[tuple[str, str], int]:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cur = await conn.execute(
            "SELECT name, state::text, count(*) FROM queue.job GROUP BY 1, 2 ORDER BY 1, 2"
        )
        return {(r[0], r[1]): r[2] for r in await cur.fetchall()}


def _counts_by_stats(stats: Any) -> dict[tuple[str, str], int]:
    found = {}
    for s in stats:
        for state in ("created", "retry", "active", "completed", "cancelled", "failed"):
            if getattr(s, state):
                found[(s.name, state)] = getattr(s, state)
    return found


async def test_a_delayed_job_becomes_claimable_exactly_at_start_after(
    client: QueueClient, db_dsn: str
) -> None:
    await client.create_queue("d")
    start = await _db_now(db_dsn) + timedelta(seconds=0.4)
    job_id = await client.send("d", {"n": 1}, JobOptions(start_after=start))
    assert job_id is not None
    assert await _one(db_dsn, "SELECT waiting FROM queue.job WHERE id = %s", (job_id,)) is True
    assert await client.claim("d") == []
    assert await client.ready_count("d") == 0

    async def due() -> bool:
        return await _db_now(db_dsn) >= start

    await wait_until(due, timeout=5, interval=0.01)
    # No supervisor, no promotion pass: the claim itself finds the due job.
    assert await client.ready_count("d") == 1
    (job,) = await client.claim("d")
    assert job.id == job_id
    info = await client.get_job(job_id)
    assert info.state is JobState.ACTIVE
    assert info.started_on is not None and info.started_on >= start


async def test_retry_wait_and_snooze_keep_jobs_out_until_due(client: QueueClient) -> None:
    await client.create_queue("r", QueueOptions(retry_limit=3))
    failing = await client.send("r", 1)
    snoozing = await client.send("r", 2)
    assert failing is not None and snoozing is not None
    jobs = {j.id: j for j in await client.claim("r", limit=2)}
    assert await client.fail(jobs[failing], ValueError("x"), delay=0.3)
    assert await client.snooze(jobs[snoozing], 0.3)
    assert (await client.get_job(failing)).state is JobState.RETRY
    assert await client.claim("r", limit=5) == []
    (stats,) = await client.stats("r")
    assert (stats.created, stats.retry, stats.ready) == (1, 1, 0)

    await asyncio.sleep(0.35)
    again = {j.id: j for j in await client.claim("r", limit=5)}
    assert set(again) == {failing, snoozing}
    assert again[failing].retry_count == 1 and again[snoozing].retry_count == 0


async def test_due_jobs_compete_with_ready_ones_by_priority_then_age(
    client: QueueClient,
) -> None:
    await client.create_queue("p")
    low_old = await client.send("p", "low-old")
    high_delayed = await client.send("p", "high-delayed", JobOptions(priority=5, start_after=0.2))
    low_delayed = await client.send("p", "low-delayed", JobOptions(start_after=0.2))
    low_new = await client.send("p", "low-new")
    mid = await client.send("p", "mid", JobOptions(priority=1))
    await asyncio.sleep(0.25)
    order = [j.id for j in await client.claim("p", limit=1)]
    order += [j.id for j in await client.claim("p", limit=10)]
    # priority first; within a priority, the order of sending (seq), delayed or not
    assert order == [high_delayed, mid, low_old, low_delayed, low_new]


async def test_policies_hold_for_waiting_jobs(client: QueueClient) -> None:
    await client.create_queue("short", QueueOptions(policy=QueuePolicy.SHORT))
    first = await client.send("short", 1, JobOptions(singleton_key="k", start_after=3600))
    assert first is not None
    assert await client.send("short", 2, JobOptions(singleton_key="k")) is None

    await client.create_queue("stately", QueueOptions(policy=QueuePolicy.STATELY))
    a = await client.send("stately", 1, JobOptions(singleton_key="k", start_after=0.2))
    assert a is not None
    assert await client.send("stately", 2, JobOptions(singleton_key="k")) is None
    await asyncio.sleep(0.25)
    (claimed,) = await client.claim("stately", limit=5)
    assert claimed.id == a
    b = await client.send("stately", 3, JobOptions(singleton_key="k"))
    assert b is not None
    assert await client.claim("stately", limit=5) == []  # one active per key
    assert await client.complete(claimed.id, claimed.lease)
    assert [j.id for j in await client.claim("stately", limit=5)] == [b]


async def test_singleton_queue_promotes_due_jobs_one_per_key(client: QueueClient) -> None:
    await client.create_queue("one", QueueOptions(policy=QueuePolicy.SINGLETON))
    k1 = await client.send("one", 1, JobOptions(singleton_key="a", start_after=0.2))
    k1b = await client.send("one", 2, JobOptions(singleton_key="a", start_after=0.2))
    k2 = await client.send("one", 3, JobOptions(singleton_key="b"))
    await asyncio.sleep(0.25)
    claimed = {j.id for j in await client.claim("one", limit=10)}
    assert claimed == {k1, k2}
    assert await client.claim("one", limit=10) == []
    assert k1b is not None and await client.ready_count("one") == 1


async def test_stats_and_ready_count_are_exact_under_concurrent_workers(
    client: QueueClient, db_dsn: str
) -> None:
    await client.create_queue("c1", QueueOptions(retry_limit=1))
    await client.create_queue("c2")
    await client.send_many("c1", list(range(300)))
    await client.send_many("c2", list(range(200)))
    await client.send_many("c2", list(range(50)), JobOptions(start_after=3600))

    async def worker(queue: str, n: int) -> None:
        for i in range(n):
            jobs = await client.claim(queue, limit=7)
            for k, job in enumerate(jobs):
                if (i + k) % 5 == 0:
                    await client.fail(job, ValueError("x"), delay=0)
                elif (i + k) % 7 == 0:
                    await client.snooze(job, 3600)
                else:
                    await client.complete(job.id, job.lease)

    await asyncio.gather(*(worker(q, 12) for q in ("c1", "c1", "c1", "c2", "c2")))
    cancelled = await client.claim("c2", limit=3)
    await client.cancel(*[j.id for j in cancelled])

    stats = await client.stats()
    assert _counts_by_stats(stats) == await _counts_by_scan(db_dsn)
    for s in stats:
        ready = await _one(
            db_dsn,
            "SELECT count(*) FROM queue.job WHERE name = %s AND state < 'active' "
            "AND start_after <= now()",
            (s.name,),
        )
        assert s.ready == ready == await client.ready_count(s.name)
    # the throughput estimate sees this minute's completions
    assert sum(s.completed_last_minute for s in stats) > 0


async def test_counters_survive_folding_and_truncate(client: QueueClient, db_dsn: str) -> None:
    await client.create_queue("f")
    async with QueueClient.connect(db_dsn, migrate_schema=False) as second:
        await second.send_many("f", list(range(40)))
    await client.send_many("f", list(range(2)))

    async def folded() -> bool:
        await client.supervisor.maintain()
        shards = await _one(
            db_dsn,
            "SELECT count(DISTINCT shard) FROM queue.job_count WHERE name = 'f' AND shard <> 0 "
            "AND shard NOT IN (SELECT pid FROM pg_stat_activity)",
        )
        return bool(shards == 0)

    await wait_until(folded, timeout=10, interval=0.1)
    assert (await client.stats("f"))[0].created == 42
    assert await client.ready_count("f") == 42

    async with await psycopg.AsyncConnection.connect(db_dsn, autocommit=True) as conn:
        await conn.execute("TRUNCATE queue.job")
    (after,) = await client.stats("f")
    assert (after.created, after.ready) == (0, 0)
    await client.send("f", 1)
    assert await client.ready_count("f") == 1


async def test_maintenance_purges_and_expires_in_batches_by_index(
    client: QueueClient, db_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await client.create_queue("m", QueueOptions(delete_after=0))
    await client.create_queue("keep")
    await client.send_many("m", list(range(35)))
    kept = await client.send("keep", 1)
    stale = await client.send_many("keep", [1, 2, 3], JobOptions(retention=1))
    for _ in range(5):
        for job in await client.claim("m", limit=10):
            await client.complete(job.id, job.lease)
    await asyncio.sleep(1.05)
    sup = client.supervisor
    sup.batch, sup.pace, sup.vacuum = 10, 0.0, "always"
    monkeypatch.setattr(supervisor_module, "VACUUM_THRESHOLD", 0)
    result = await sup.maintain()
    assert (result.purged, result.expired, result.ran) == (35, 3, True)
    assert "job" in result.vacuumed
    for job_id in stale:
        assert job_id is not None
        assert (await client.get_job(job_id)).state is JobState.FAILED
    assert kept is not None and (await client.get_job(kept)).state is JobState.CREATED
    (m,) = await client.stats("m")
    assert (m.completed, m.created) == (0, 0)
    # nothing due: the next pass finds nothing and vacuums nothing at the normal threshold
    monkeypatch.setattr(supervisor_module, "VACUUM_THRESHOLD", 10**9)
    again = await sup.maintain()
    assert (again.purged, again.expired, again.vacuumed) == (0, 0, ())


async def test_retention_and_history_read_every_retention_period_through_one_index(
    client: QueueClient, db_dsn: str
) -> None:
    # job_finished is keyed (delete_after, completed_on): purge and the history snapshot walk
    # its distinct retention periods, so jobs of every period must be found, each by its own
    await client.create_queue("r", QueueOptions(delete_after=0))
    periods = {0.0: 4, 0.5: 3, 3600.0: 5}
    for after, n in periods.items():
        await client.send_many("r", list(range(n)), JobOptions(delete_after=after))
    for job in await client.claim("r", limit=100):
        await client.complete(job.id, job.lease)
    # the history slot that just ended holds all twelve completions, whatever their period
    now = (await _db_now(db_dsn)).timestamp()
    await asyncio.sleep(2 * (int(now) // 2 + 1) - now + 0.05)
    control = QueueControl(client)
    await control.snapshot(every=2)
    (point,) = await control.history(60, "r")
    assert (point.completed, point.failed) == (12, 0)
    await asyncio.sleep(0.5)
    sup = client.supervisor
    sup.pace = 0.0
    result = await sup.maintain()
    assert result.purged == periods[0.0] + periods[0.5]
    (r,) = await client.stats("r")
    assert r.completed == periods[3600.0]
    left = await _one(db_dsn, "SELECT array_agg(DISTINCT delete_after) FROM queue.job")
    assert left == [3600.0]


async def test_the_purge_and_expiry_plans_use_their_indexes(
    client: QueueClient, db_dsn: str
) -> None:
    await client.create_queue("big", QueueOptions(delete_after=3600))
    await client.send_many("big", list(range(3000)))
    for job in await client.claim("big", limit=1500):
        await client.complete(job.id, job.lease)
    async with await psycopg.AsyncConnection.connect(db_dsn, autocommit=True) as conn:
        # with the statistics as the claims left them (autovacuum off: never analyzed since the
        # jobs finished), and fresh
        for analyze in (False, True):
            if analyze:
                await conn.execute("ANALYZE queue.job")
            for name, index in (("purge_finished", "job_finished"), ("expire_queued", "job_keep")):
                cur = await conn.execute(
                    f"EXPLAIN {client.sql[name]}".encode(),  # the statement as the engine sends
                    {"limit": 10, "after": 3600.0},
                )
                plan = "\n".join(r[0] for r in await cur.fetchall())
                assert index in plan, (analyze, plan)


async def test_a_version_2_database_with_jobs_in_every_state_upgrades_in_place(
    pg_server_dsn: str,
) -> None:
    with scratch_database(pg_server_dsn, "insightdesk_up") as dsn:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            assert await migrate_schema(conn, "queue", migrations("queue")[:2]) == 2
            await conn.execute("INSERT INTO queue.queue (name) VALUES ('u'), ('v')")
            await conn.execute(
                """
                INSERT INTO queue.job (name, priority, data, state, start_after, completed_on,
                                       started_on, heartbeat_on, lease, retry_count)
                SELECT 'u', p, to_jsonb(tag), st::queue.job_state, now() + delay * interval '1 s',
                       CASE WHEN st IN ('completed', 'cancelled', 'failed') THEN now() END,
                       CASE WHEN st = 'active' THEN now() END,
                       CASE WHEN st = 'active' THEN now() END,
                       CASE WHEN st = 'active' THEN gen_random_uuid() END,
                       CASE WHEN st = 'retry' THEN 1 ELSE 0 END
                FROM (VALUES ('ready-low', 0, 'created', 0), ('ready-high', 3, 'created', 0),
                             ('delayed', 9, 'created', 3600), ('retry-now', 1, 'retry', 0),
                             ('retry-later', 9, 'retry', 3600), ('active', 0, 'active', 0),
                             ('done', 0, 'completed', 0), ('gone', 0, 'cancelled', 0),
                             ('bad', 0, 'failed', 0)) AS t(tag, p, st, delay)
                """
            )
            await conn.execute(
                "INSERT INTO queue.job (name, data) SELECT 'v', to_jsonb(g) "
                "FROM generate_series(1, 500) g"
            )
        async with QueueClient.connect(dsn) as client:  # migrates to the latest version
            assert await client.migrate() == LATEST_VERSION
            assert _counts_by_stats(await client.stats()) == await _counts_by_scan(dsn)
            assert await client.ready_count("u") == 3
            assert await client.ready_count("v") == 500
            claimed = [j.data for j in await client.claim("u", limit=10)]
            assert claimed == ["ready-high", "retry-now", "ready-low"]
            (u,) = await client.stats("u")
            assert (u.created, u.retry, u.active, u.ready) == (1, 1, 4, 0)
            assert len(await client.claim("v", limit=1000)) == 500
            new = await client.send("u", "after-upgrade", JobOptions(start_after=0.1))
            await asyncio.sleep(0.15)
            assert [j.id for j in await client.claim("u")] == [new]


async def test_a_version_7_database_keeps_exact_counts_through_the_lean_counter_upgrade(
    pg_server_dsn: str,
) -> None:
    # Version 8 stops counting active and completed jobs in job_count (they are derived): the
    # upgrade recounts a populated database whose counters are spread over live backends' shards.
    with scratch_database(pg_server_dsn, "insightdesk_up8") as dsn:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            assert await migrate_schema(conn, "queue", migrations("queue")[:7]) == 7
        # "v7" writes through version-7 statements only (send, claim, settle): its counter rows
        # land in its own shard before the upgrade and keep landing there after it
        async with QueueClient.connect(dsn, migrate_schema=False) as v7:
            await v7.create_queue("a", QueueOptions(retry_limit=0))
            await v7.create_queue("b")
            await v7.send_many("a", list(range(30)))
            await v7.send_many("b", list(range(10)), JobOptions(start_after=3600))
            first = await v7.claim("a", limit=12)
            for job in first[:5]:
                await v7.complete(job.id, job.lease)
            await v7.fail(first[5], ValueError("x"), delay=0)
            await v7.cancel(first[6].id)
            async with QueueClient.connect(dsn) as client:  # upgrades while v7 is connected
                assert await client.migrate() == LATEST_VERSION
                assert _counts_by_stats(await client.stats()) == await _counts_by_scan(dsn)
                (a,) = await client.stats("a")
                assert (a.created, a.active, a.completed, a.failed, a.cancelled) == (18, 5, 5, 1, 1)
                # the v7 process keeps working on the upgraded schema; counts stay exact
                for job in first[7:]:
                    await v7.complete(job.id, job.lease)
                more = await client.claim("a", limit=4)
                await client.complete(more[0].id, more[0].lease)
                await client.fail(more[1], ValueError("y"), delay=0)
                async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
                    await conn.execute("DELETE FROM queue.job WHERE state = 'completed'")
                assert _counts_by_stats(await client.stats()) == await _counts_by_scan(dsn)
                (a,) = await client.stats("a")
                assert (a.created, a.active, a.completed, a.failed) == (14, 2, 0, 2)
                assert await client.ready_count("a") == 14


async def test_claims_behind_a_delayed_backlog_never_scan_the_job_table(
    client: QueueClient, db_dsn: str
) -> None:
    """The consumer's connection plans its claim statement once, generically (it cannot see
    the limits, and takes a LIMIT of a parameter for a tenth of the rows). Behind thousands of
    waiting jobs, with statistics that know of them (the maintenance leader ANALYZEs after large
    changes), that plan must still reach the claimed rows through indexes: a scan of the job
    table per claim drained 20k jobs behind 100k delayed ones at 160 jobs/s instead of 3,000."""
    await client.create_queue("deep")
    await client.send_many("deep", list(range(5_000)), JobOptions(start_after=3600))
    await client.send_many("deep", list(range(400)))
    async with await psycopg.AsyncConnection.connect(db_dsn, autocommit=True) as conn:
        await conn.execute("ANALYZE queue.job")

    async with client.store.session(listen=False) as session:
        done: list[Completion] = []
        # past psycopg's prepare threshold: the cached plans are what run, of both claim
        # statements (with and without the promotion of due waiting jobs)
        for n in range(20):
            claimed = await session.claim(
                done,
                [ClaimRequest("deep", 10, False, promote=n % 2 == 0)],
                default_heartbeat=15.0,
            )
            assert len(claimed.jobs) == 10
            done = [Completion(j.id, j.lease, None) for j in claimed.jobs]
        conn = session._conn
        cur = await conn.execute(
            "SELECT name, parameter_types::text[] FROM pg_prepared_statements"
            " WHERE statement LIKE '%%WITH done AS%%' ORDER BY statement LIKE '%%due AS%%'"
        )
        [ready, promoting] = await cur.fetchall()
        # psycopg numbers the parameters in order of first appearance: fetch's leading comment
        # names the queues and limits first, fetch_ready's names none
        assert promoting[1][0] == "text[]" and promoting[1][2:] == [
            "uuid[]",
            "uuid[]",
            "text[]",
            "double precision",
        ]
        assert ready[1][:4] == ["uuid[]", "uuid[]", "text[]", "text[]"]  # then the limits
        plans = []
        for name, args in (
            (promoting[0], "'{{deep}}', '{{10}}', '{{}}', '{{}}', '{{}}', 15"),
            (ready[0], "'{{}}', '{{}}', '{{}}', '{{deep}}', '{{10}}', 15"),
        ):
            cur = await conn.execute(
                sql.SQL("EXPLAIN EXECUTE {}(" + args + ")").format(sql.Identifier(name))
            )
            plans.append("\n".join(r[0] for r in await cur.fetchall()))
    assert all("Seq Scan on job" not in plan for plan in plans), plans
    assert "due" not in plans[1] and "job_queued" not in plans[1], plans[1]


async def test_failing_and_snoozing_find_their_jobs_by_id_not_through_every_active_job(
    client: QueueClient, db_dsn: str
) -> None:
    """The statistics saw no active job (ANALYZE ran before the claims), as they often do: the
    settling functions must still go to each job by id. Through job_active, a failure or snooze
    of 10 jobs among 20,000 running ones took 17 and 65 ms (version 9) instead of 3 and 1.5."""
    await client.create_queue("busy")
    await client.send_many("busy", list(range(300)))
    async with await psycopg.AsyncConnection.connect(db_dsn, autocommit=True) as conn:
        await conn.execute("ANALYZE queue.job")
    jobs = await client.store.claim("busy", 200)
    failing, snoozing = jobs[:5], jobs[5:10]
    async with await psycopg.AsyncConnection.connect(db_dsn) as conn:  # one transaction
        cur = await conn.execute(
            "SELECT * FROM queue.fail_jobs(%s::uuid[], %s::uuid[], %s::jsonb[],"
            " %s::float8[], %s::bool[])",
            (
                [j.id for j in failing],
                [j.lease for j in failing],
                ['{"message": "no"}'] * 5,
                [None] * 5,
                [False] * 5,
            ),
        )
        assert {r[1] for r in await cur.fetchall()} == {"retry"}
        cur = await conn.execute(
            "SELECT * FROM queue.snooze_jobs(%s::uuid[], %s::uuid[], %s::float8[])",
            ([j.id for j in snoozing], [j.lease for j in snoozing], [0.0] * 5),
        )
        assert len(await cur.fetchall()) == 5
        cur = await conn.execute(
            "SELECT pg_stat_get_xact_numscans('queue.job_active'::regclass),"
            " pg_stat_get_xact_numscans('queue.job_pkey'::regclass)"
        )
        active_scans, by_id = await cur.fetchone() or (None, None)
        await conn.commit()
    assert active_scans == 0 and by_id > 0
