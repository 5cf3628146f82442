-- What the operations console needs of the engine: pause/resume, the worker registry, the
-- statistics history, job search with keyset pagination and bulk actions by id.

-- name: set_paused
-- Pause or resume a queue. The NOTIFY on the queue's channel (delivered at commit) wakes idle
-- workers of the queue in every process so a resumed queue is claimed at once; pausing needs no wake-up since every
-- claim statement checks the flag.
WITH changed AS (
    UPDATE {schema}.queue SET paused = %(paused)s, updated_on = now()
    WHERE name = %(name)s
    RETURNING name
)
SELECT name, pg_notify({schema}.queue_channel(name), name) IS NULL AS notified FROM changed;

-- name: queue_overview
-- Queue definitions with the pause flag and who works on them (live registry rows only).
SELECT q.name, q.policy::text AS policy, q.paused, q.dead_letter,
       EXISTS (SELECT 1 FROM {schema}.queue d WHERE d.dead_letter = q.name) AS is_dead_letter,
       COALESCE(w.workers, 0) AS workers, COALESCE(w.concurrency, 0) AS concurrency
FROM {schema}.queue q
LEFT JOIN (
    SELECT queue, count(*) AS workers, sum(concurrency) AS concurrency
    FROM {schema}.worker
    WHERE heartbeat_on > now() - %(ttl)s * interval '1 second'
    GROUP BY queue
) w ON w.queue = q.name
WHERE %(name)s::text IS NULL OR q.name = %(name)s
ORDER BY q.name;

-- name: register_workers
-- Insert or refresh the registry rows of one process's workers (also re-creates a row that
-- expired while the process was stalled).
INSERT INTO {schema}.worker (id, host, pid, queue, concurrency, started_on, heartbeat_on)
SELECT w.id, %(host)s, %(pid)s, w.queue, w.concurrency, w.started_on, now()
FROM unnest(%(ids)s::uuid[], %(queues)s::text[], %(concurrencies)s::int[],
            %(started)s::timestamptz[]) AS w(id, queue, concurrency, started_on)
ON CONFLICT (id) DO UPDATE SET heartbeat_on = now();

-- name: deregister_workers
DELETE FROM {schema}.worker WHERE id = ANY(%(ids)s::uuid[]);

-- name: expire_workers
DELETE FROM {schema}.worker WHERE heartbeat_on < now() - %(ttl)s * interval '1 second'
RETURNING id;

-- name: list_workers
-- Who is working on what: every live worker, with what its queue is running right now.
SELECT w.id, w.host, w.pid, w.queue, w.concurrency, w.started_on, w.heartbeat_on,
       q.paused
FROM {schema}.worker w LEFT JOIN {schema}.queue q ON q.name = w.queue
WHERE w.heartbeat_on > now() - %(ttl)s * interval '1 second'
  AND (%(name)s::text IS NULL OR w.queue = %(name)s)
ORDER BY w.queue, w.host, w.pid, w.started_on;

-- name: snapshot_history
-- One history row per queue for the 10-second slot that just began, unless another process
-- already wrote it. Queued counts come from the job_count counters (plus the due waiting jobs,
-- an index range), active ones through job_active; the jobs finished during the previous slot
-- are read through job_finished, one range per retention period. Nothing scans the job table.
WITH RECURSIVE slot AS (
    SELECT to_timestamp(floor(extract(epoch FROM now()) / %(every)s) * %(every)s) AS s
), {retention_scan}, counts AS (
    SELECT name,
           sum(n) FILTER (WHERE state < 'active' AND NOT waiting) AS settled_ready,
           sum(n) FILTER (WHERE state < 'active' AND waiting) AS waiting
    FROM {schema}.job_count GROUP BY name
), running AS (
    SELECT name, count(*) AS active FROM {schema}.job WHERE state = 'active' GROUP BY name
), finished AS (
    SELECT name,
           count(*) FILTER (WHERE state = 'completed') AS completed,
           count(*) FILTER (WHERE state = 'failed') AS failed,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY wait) AS wait_p50,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY wait) AS wait_p95,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY run) AS run_p50,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY run) AS run_p95
    FROM (
        SELECT name, state,
               extract(epoch FROM started_on - GREATEST(start_after, created_on))::double precision AS wait,
               extract(epoch FROM completed_on - started_on)::double precision AS run
        FROM periods p CROSS JOIN LATERAL (
            SELECT name, state, started_on, start_after, created_on, completed_on
            FROM {schema}.job
            WHERE state > 'active' AND delete_after = p.after
              AND completed_on >= (SELECT s FROM slot) - %(every)s * interval '1 second'
              AND completed_on < (SELECT s FROM slot)
            OFFSET 0) j  -- kept a lateral subquery: one index range per period, never a join
        WHERE p.after IS NOT NULL
    ) f
    GROUP BY name
)
INSERT INTO {schema}.queue_history (slot, name, ready, delayed, active, completed, failed,
                                    wait_p50, wait_p95, run_p50, run_p95)
SELECT (SELECT s FROM slot), q.name,
       COALESCE(c.settled_ready, 0) + d.due, GREATEST(COALESCE(c.waiting, 0) - d.due, 0),
       COALESCE(a.active, 0), COALESCE(f.completed, 0), COALESCE(f.failed, 0),
       f.wait_p50, f.wait_p95, f.run_p50, f.run_p95
FROM {schema}.queue q
LEFT JOIN counts c ON c.name = q.name
LEFT JOIN running a ON a.name = q.name
CROSS JOIN LATERAL (
    SELECT count(*) AS due FROM {schema}.job
    WHERE name = q.name AND state < 'active' AND waiting AND start_after <= now()
) d
LEFT JOIN finished f ON f.name = q.name
WHERE NOT EXISTS (SELECT 1 FROM {schema}.queue_history h WHERE h.slot = (SELECT s FROM slot))
ON CONFLICT DO NOTHING;

-- name: prune_history
DELETE FROM {schema}.queue_history WHERE slot < now() - %(retention)s * interval '1 second';

-- name: history
SELECT slot, name, ready, delayed, active, completed, failed, wait_p50, wait_p95, run_p50, run_p95
FROM {schema}.queue_history
WHERE slot > now() - %(seconds)s * interval '1 second'
  AND (%(name)s::text IS NULL OR name = %(name)s)
ORDER BY slot, name;

-- fragment: search_columns
j.id, j.seq, j.name, j.state::text AS state, j.priority, j.retry_count, j.retry_limit,
j.singleton_key, j.created_on, j.start_after, j.started_on, j.completed_on,
left(j.data::text, 200) AS data_preview

-- fragment: search_filter
j.seq < COALESCE(%(cursor)s::bigint, 9223372036854775807)
AND (%(key)s::text IS NULL OR j.singleton_key = %(key)s)
AND (%(since)s::timestamptz IS NULL OR j.created_on >= %(since)s)
AND (%(until)s::timestamptz IS NULL OR j.created_on < %(until)s)
AND (%(data)s::jsonb IS NULL OR j.data @> %(data)s::jsonb)

-- name: search_jobs
-- Jobs matching a filter, newest first, keyset-paginated on seq. For every (queue, state) pair
-- the filter allows, one backward scan reads at most %(limit)s rows: of job_search_queued or
-- job_search_finished (the branch's literal state range lets the planner use the partial
-- index; the other branches find nothing at once), or of the few active jobs through
-- job_active. A page costs (queues x states) index probes whatever the size of the job table.
SELECT j.*
FROM {schema}.queue q
CROSS JOIN unnest(%(states)s::text[]) AS s(state)
CROSS JOIN LATERAL (
    (SELECT {search_columns}
     FROM {schema}.job j
     WHERE j.name = q.name AND j.state < 'active' AND j.state = s.state::{schema}.job_state
       AND {search_filter}
     ORDER BY j.seq DESC
     LIMIT %(limit)s)
    UNION ALL
    (SELECT {search_columns}
     FROM {schema}.job j
     WHERE j.name = q.name AND j.state = 'active' AND j.state = s.state::{schema}.job_state
       AND {search_filter}
     ORDER BY j.seq DESC
     LIMIT %(limit)s)
    UNION ALL
    (SELECT {search_columns}
     FROM {schema}.job j
     WHERE j.name = q.name AND j.state > 'active' AND j.state = s.state::{schema}.job_state
       AND {search_filter}
     ORDER BY j.seq DESC
     LIMIT %(limit)s)
) j
WHERE %(queues)s::text[] IS NULL OR q.name = ANY(%(queues)s::text[])
ORDER BY j.seq DESC
LIMIT %(limit)s;

-- name: search_job_by_id
SELECT {search_columns}
FROM {schema}.job j
WHERE j.id = %(id)s
  AND j.state::text = ANY(%(states)s::text[])
  AND (%(queues)s::text[] IS NULL OR j.name = ANY(%(queues)s::text[]))
  AND {search_filter};

-- name: job_detail
SELECT id, seq, name, state::text AS state, priority, data, headers, policy::text AS policy,
       retry_limit, retry_count, retry_delay, retry_backoff, retry_delay_max, expire_in, heartbeat,
       delete_after, keep_until, start_after, singleton_key, singleton_on, dead_letter, created_on,
       started_on, heartbeat_on, completed_on, output, errors
FROM {schema}.job WHERE id = %(id)s;

-- name: redrive_ids
-- redrive for chosen dead-letter jobs: each goes back to the queue it came from as a fresh job
-- and its dead-letter copy is completed, in one statement.
WITH picked AS (
    SELECT d.id, d.data, d.headers, d.headers #>> '{{dead_letter,queue}}' AS source
    FROM {schema}.job d
    WHERE d.id = ANY(%(ids)s::uuid[]) AND d.state < 'active' AND d.headers ? 'dead_letter'
    FOR UPDATE SKIP LOCKED
), moved AS (
    INSERT INTO {schema}.job (name, priority, data, headers, policy, retry_limit, retry_delay,
                              retry_backoff, retry_delay_max, expire_in, heartbeat, delete_after,
                              keep_until, dead_letter)
    SELECT q.name, q.priority, p.data, p.headers - 'dead_letter', q.policy, q.retry_limit,
           q.retry_delay, q.retry_backoff, q.retry_delay_max, q.expire_in, q.heartbeat,
           q.delete_after, now() + q.retention * interval '1 second', q.dead_letter
    FROM picked p JOIN {schema}.queue q ON q.name = p.source
    RETURNING id
), done AS (
    UPDATE {schema}.job j
    SET state = 'completed', completed_on = now(), output = jsonb_build_object('redriven_to', p.source)
    FROM picked p JOIN {schema}.queue q ON q.name = p.source
    WHERE j.id = p.id
    RETURNING j.id
)
SELECT id FROM done;

-- name: count_jobs
-- How many jobs a filter matches (the total of a CLI progress bar); index probes per
-- (queue, state) like search_jobs, counting instead of paging.
SELECT count(*) AS total
FROM {schema}.queue q
CROSS JOIN unnest(%(states)s::text[]) AS s(state)
CROSS JOIN LATERAL (
    SELECT 1 FROM {schema}.job j
    WHERE j.name = q.name AND j.state = s.state::{schema}.job_state AND {search_filter}
      AND (%(id)s::uuid IS NULL OR j.id = %(id)s)
) j
WHERE %(queues)s::text[] IS NULL OR q.name = ANY(%(queues)s::text[]);
