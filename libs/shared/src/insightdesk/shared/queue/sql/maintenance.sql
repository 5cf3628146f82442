-- Supervision, retention and statistics.

-- name: recover
-- Crash recovery: active jobs whose heartbeat stopped (worker killed, pod evicted) or that ran
-- past expire_in go through the normal failure path, so the lost run counts as an attempt.
-- fail_jobs settles what it can: a row it cannot (a stately retry collision) is failed with
-- the reason, never holding up the other queues' jobs.
-- SKIP LOCKED lets many supervisors run this at once without blocking each other.
WITH stale AS (
    SELECT j.id, j.lease,
           CASE WHEN extract(epoch FROM now() - j.started_on) > j.expire_in
                THEN jsonb_build_object('message', 'job ran longer than expire_in (' || j.expire_in || 's)', 'type', 'Expired')
                ELSE jsonb_build_object('message', 'worker stopped sending heartbeats', 'type', 'HeartbeatLost')
           END AS error
    FROM {schema}.job j
    WHERE j.state = 'active'
      -- compared as seconds, never as now() + interval: no stored duration can make the
      -- statement fail with "interval out of range" for the whole schema
      AND (extract(epoch FROM now() - j.started_on) > j.expire_in
           -- a database restart is not a dead worker: count from whichever is later
           OR extract(epoch FROM now() - GREATEST(j.heartbeat_on, pg_postmaster_start_time()))
              > COALESCE(j.heartbeat, %(default_heartbeat)s))
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
SELECT f.id, f.state::text AS state
FROM {schema}.fail_jobs(
    ARRAY(SELECT id FROM stale ORDER BY id), ARRAY(SELECT lease FROM stale ORDER BY id),
    ARRAY(SELECT error FROM stale ORDER BY id),
    ARRAY(SELECT NULL::double precision FROM stale), ARRAY(SELECT false FROM stale)) f;

-- fragment: retention_scan
-- The distinct delete_after values of finished jobs, "periods(after)" (a NULL row ends it):
-- one probe of job_finished per value, skipping from each value to the next (a loose index
-- scan), so the statements below cost O(retention periods + rows read), not O(finished jobs).
periods(after) AS (
    (SELECT delete_after FROM {schema}.job WHERE state > 'active' ORDER BY delete_after LIMIT 1)
    UNION ALL
    SELECT (SELECT j.delete_after FROM {schema}.job j
            WHERE j.state > 'active' AND j.delete_after > p.after
            ORDER BY j.delete_after LIMIT 1)
    FROM periods p WHERE p.after IS NOT NULL
)

-- name: retention_periods
-- The distinct retention periods of finished jobs, read once per maintenance pass.
WITH RECURSIVE {retention_scan}
SELECT after FROM periods WHERE after IS NOT NULL ORDER BY after;

-- name: purge_finished
-- Delete finished jobs of one retention period (%(after)s seconds) completed longer ago than
-- it, oldest first, in bounded batches: one range of job_finished (a pass with nothing due is
-- one index probe per period). Each batch is its own short transaction.
DELETE FROM {schema}.job
WHERE id IN (
    SELECT id FROM {schema}.job
    WHERE state > 'active' AND delete_after = %(after)s
      AND completed_on < now() - %(after)s * interval '1 second'
    ORDER BY completed_on  -- job_finished's order, whatever the statistics say
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED)
RETURNING id;

-- name: expire_queued
-- Queued jobs older than their retention are failed with a reason instead of running late
-- (found through job_keep).
UPDATE {schema}.job
SET state = 'failed', completed_on = now(), waiting = false,
    output = jsonb_build_object('message', 'retention elapsed before the job started', 'type', 'RetentionExpired')
WHERE id IN (
    SELECT id FROM {schema}.job
    WHERE state < 'active' AND keep_until < now()
    ORDER BY keep_until  -- job_keep's order, whatever the statistics say
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED)
RETURNING id;

-- name: tidy_counts
-- Fold the counter rows of backends that have ended into shard 0, drop folded rows that net to
-- zero, and drop per-minute completion counters older than an hour: job_count stays about
-- (queues x states x live connections) rows. Rows a live transaction holds are skipped, never
-- waited for.
WITH live AS (
    SELECT pid FROM pg_stat_activity WHERE datname = current_database()
), gone AS (
    DELETE FROM {schema}.job_count c
    WHERE (c.name, c.state, c.waiting, c.shard) IN (
        SELECT name, state, waiting, shard FROM {schema}.job_count
        WHERE shard <> 0 AND shard NOT IN (SELECT pid FROM live)
        ORDER BY name, state, waiting, shard
        FOR UPDATE SKIP LOCKED)
    RETURNING c.name, c.state, c.waiting, c.n, c.total
), sums AS (
    SELECT name, state, waiting, sum(n) AS n, sum(total) AS total
    FROM gone GROUP BY name, state, waiting
), folded AS (
    INSERT INTO {schema}.job_count AS c (name, state, waiting, shard, n, total)
    SELECT name, state, waiting, 0, n, total FROM sums ORDER BY name, state, waiting
    ON CONFLICT (name, state, waiting, shard)
        DO UPDATE SET n = c.n + EXCLUDED.n, total = c.total + EXCLUDED.total
    RETURNING 1
), empty AS (
    -- shard-0 rows at zero that this fold does not add to (it cannot see its own insert)
    DELETE FROM {schema}.job_count c
    WHERE c.shard = 0 AND c.n = 0 AND c.total = 0
      AND NOT EXISTS (SELECT 1 FROM sums s
                      WHERE s.name = c.name AND s.state = c.state AND s.waiting = c.waiting)
    RETURNING 1
), rates AS (
    DELETE FROM {schema}.job_rate WHERE minute < now() - interval '1 hour'
    RETURNING 1
)
SELECT (SELECT count(*) FROM gone) AS folded, (SELECT count(*) FROM empty) AS emptied,
       (SELECT count(*) FROM rates) AS rates;

-- name: table_health
-- Dead row versions of the engine's tables (cumulative statistics, no table access), for the
-- maintenance leader's VACUUM decision on servers without autovacuum.
SELECT c.relname::text AS name, COALESCE(s.n_dead_tup, 0) AS dead, COALESCE(s.n_live_tup, 0) AS live,
       COALESCE(s.n_mod_since_analyze, 0) AS modified,
       current_setting('autovacuum') = 'on' AS server_autovacuum
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
WHERE n.nspname = %(schema)s AND c.relname IN ('job', 'job_count', 'job_rate') AND c.relkind = 'r'
ORDER BY c.relname;

-- name: stats
-- Per queue, from the counters and index heads only (no scan of the job table):
--   created, retry, cancelled, failed: exact, transactional (triggers keep job_count in step).
--   active: exact, the active jobs through job_active (bounded by the running jobs).
--   completed: exact, the queue's total (kept by the insert and delete triggers) less the rest.
--   ready: exact = settled ready jobs (counters) + due waiting jobs not yet promoted (an index
--     range over job_queued that claims keep short).
--   oldest_ready_age: exact, the first entries of job_queued.
--   completed_last_minute: estimate from per-minute counters (this minute so far plus the
--     previous minute weighted by the part of it still inside the last 60 s).
SELECT q.name,
       COALESCE(c.created, 0)::bigint AS created,
       COALESCE(c.retry, 0)::bigint AS retry,
       COALESCE(a.n, 0)::bigint AS active,
       (COALESCE(c.total, 0) - COALESCE(c.resting, 0) - COALESCE(a.n, 0))::bigint AS completed,
       COALESCE(c.cancelled, 0)::bigint AS cancelled,
       COALESCE(c.failed, 0)::bigint AS failed,
       (COALESCE(c.settled_ready, 0) + d.due)::bigint AS ready,
       COALESCE(extract(epoch FROM now() - LEAST(r.oldest, d.oldest_due)), 0)::double precision
           AS oldest_ready_age,
       COALESCE(round(m.completed), 0)::bigint AS completed_last_minute
FROM {schema}.queue q
LEFT JOIN LATERAL (
    SELECT sum(n) FILTER (WHERE state = 'created') AS created,
           sum(n) FILTER (WHERE state = 'retry') AS retry,
           sum(n) FILTER (WHERE state = 'cancelled') AS cancelled,
           sum(n) FILTER (WHERE state = 'failed') AS failed,
           sum(n) FILTER (WHERE state < 'active' AND NOT waiting) AS settled_ready,
           sum(n) AS resting, sum(total) AS total
    FROM {schema}.job_count WHERE name = q.name
) c ON true
LEFT JOIN (
    SELECT name, count(*) AS n FROM {schema}.job WHERE state = 'active' GROUP BY name
) a ON a.name = q.name
CROSS JOIN LATERAL (
    SELECT count(*) AS due, min(start_after) AS oldest_due FROM {schema}.job
    WHERE name = q.name AND state < 'active' AND waiting AND start_after <= now()
) d
CROSS JOIN LATERAL (
    SELECT min(start_after) AS oldest FROM {schema}.job
    WHERE name = q.name AND state < 'active' AND NOT waiting
) r
CROSS JOIN LATERAL (
    SELECT sum(completed * CASE WHEN minute >= date_trunc('minute', now()) THEN 1
                                ELSE 1 - extract(epoch FROM now() - date_trunc('minute', now())) / 60 END)
               AS completed
    FROM {schema}.job_rate
    WHERE name = q.name AND minute >= date_trunc('minute', now()) - interval '1 minute'
) m
WHERE %(name)s::text IS NULL OR q.name = %(name)s
ORDER BY q.name;
