-- Manual operations on jobs: cancel, resume, retry, redrive, delete, find.

-- name: cancel
UPDATE {schema}.job SET state = 'cancelled', completed_on = now(), lease = NULL, heartbeat_on = NULL
WHERE id = ANY(%(ids)s::uuid[]) AND state < 'completed'
RETURNING id;

-- name: resume
UPDATE {schema}.job SET state = 'created', completed_on = NULL, start_after = now(), waiting = false
WHERE id = ANY(%(ids)s::uuid[]) AND state = 'cancelled'
RETURNING id;

-- name: retry
-- Give failed (or cancelled) jobs one more attempt now.
UPDATE {schema}.job
SET state = 'retry', completed_on = NULL, start_after = now(), waiting = false,
    retry_limit = GREATEST(retry_limit, retry_count + 1)
WHERE id = ANY(%(ids)s::uuid[]) AND state IN ('failed', 'cancelled')
RETURNING id;

-- name: delete
DELETE FROM {schema}.job WHERE id = ANY(%(ids)s::uuid[]) RETURNING id;

-- name: redrive
-- Move queued jobs of a dead-letter queue back to the queue each came from (recorded in its
-- headers by fail_jobs) as fresh jobs, and complete the dead-letter copies, in one statement.
WITH picked AS (
    SELECT d.id, d.data, d.headers, d.headers #>> '{{dead_letter,queue}}' AS source
    FROM {schema}.job d
    WHERE d.name = %(name)s AND d.state < 'active' AND d.headers ? 'dead_letter'
    ORDER BY d.seq
    LIMIT %(limit)s
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
SELECT (SELECT count(*) FROM moved) AS moved;

-- name: get_job
SELECT id, name, state::text AS state, priority, data, headers, policy::text AS policy,
       retry_limit, retry_count, retry_delay, retry_backoff, retry_delay_max, expire_in, heartbeat,
       delete_after, keep_until, start_after, singleton_key, singleton_on, dead_letter, created_on,
       started_on, heartbeat_on, completed_on, output
FROM {schema}.job WHERE id = %(id)s;

-- name: find_jobs
SELECT id, name, state::text AS state, priority, data, headers, policy::text AS policy,
       retry_limit, retry_count, retry_delay, retry_backoff, retry_delay_max, expire_in, heartbeat,
       delete_after, keep_until, start_after, singleton_key, singleton_on, dead_letter, created_on,
       started_on, heartbeat_on, completed_on, output
FROM {schema}.job
WHERE name = %(name)s
  AND (%(key)s::text IS NULL OR singleton_key = %(key)s)
  AND (%(state)s::text IS NULL OR state = %(state)s::{schema}.job_state)
ORDER BY seq
LIMIT %(limit)s;
