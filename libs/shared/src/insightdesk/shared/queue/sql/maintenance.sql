-- Supervision, retention and statistics.

-- name: recover
-- Crash recovery: active jobs whose heartbeat stopped (worker killed, pod evicted) or that ran
-- past expire_in go through the normal failure path, so the lost run counts as an attempt.
-- SKIP LOCKED lets many supervisors run this at once without blocking each other.
WITH stale AS (
    SELECT j.id, j.lease,
           CASE WHEN j.started_on + j.expire_in * interval '1 second' < now()
                THEN jsonb_build_object('message', 'job ran longer than expire_in (' || j.expire_in || 's)', 'type', 'Expired')
                ELSE jsonb_build_object('message', 'worker stopped sending heartbeats', 'type', 'HeartbeatLost')
           END AS error
    FROM {schema}.job j
    WHERE j.state = 'active'
      AND (j.started_on + j.expire_in * interval '1 second' < now()
           -- a database restart is not a dead worker: count from whichever is later
           OR GREATEST(j.heartbeat_on, pg_postmaster_start_time())
              + COALESCE(j.heartbeat, %(default_heartbeat)s) * interval '1 second' < now())
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
SELECT f.id, f.state::text AS state
FROM {schema}.fail_jobs(
    ARRAY(SELECT id FROM stale ORDER BY id), ARRAY(SELECT lease FROM stale ORDER BY id),
    ARRAY(SELECT error FROM stale ORDER BY id),
    ARRAY(SELECT NULL::double precision FROM stale), ARRAY(SELECT false FROM stale)) f;

-- name: purge_finished
-- Delete finished jobs whose delete_after has passed, in bounded batches.
DELETE FROM {schema}.job
WHERE id IN (
    SELECT id FROM {schema}.job
    WHERE state > 'active' AND completed_on + delete_after * interval '1 second' < now()
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED)
RETURNING id;

-- name: expire_queued
-- Queued jobs older than their retention are failed with a reason instead of running late.
UPDATE {schema}.job
SET state = 'failed', completed_on = now(),
    output = jsonb_build_object('message', 'retention elapsed before the job started', 'type', 'RetentionExpired')
WHERE id IN (
    SELECT id FROM {schema}.job
    WHERE state < 'active' AND keep_until < now()
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED)
RETURNING id;

-- name: stats
SELECT q.name,
       count(j.id) FILTER (WHERE j.state = 'created') AS created,
       count(j.id) FILTER (WHERE j.state = 'retry') AS retry,
       count(j.id) FILTER (WHERE j.state = 'active') AS active,
       count(j.id) FILTER (WHERE j.state = 'completed') AS completed,
       count(j.id) FILTER (WHERE j.state = 'cancelled') AS cancelled,
       count(j.id) FILTER (WHERE j.state = 'failed') AS failed,
       count(j.id) FILTER (WHERE j.state < 'active' AND j.start_after <= now()) AS ready,
       COALESCE(extract(epoch FROM now() - min(j.start_after) FILTER (
           WHERE j.state < 'active' AND j.start_after <= now())), 0)::double precision AS oldest_ready_age,
       count(j.id) FILTER (WHERE j.state = 'completed' AND j.completed_on > now() - interval '1 minute') AS completed_last_minute
FROM {schema}.queue q LEFT JOIN {schema}.job j ON j.name = q.name
WHERE %(name)s::text IS NULL OR q.name = %(name)s
GROUP BY q.name ORDER BY q.name;

-- name: pending_count
SELECT count(*) AS pending FROM {schema}.job WHERE state < 'completed';
