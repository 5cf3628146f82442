-- Queue schema, version 3: the engine at scale. Upgrades a populated version-2 schema in place
-- (one transaction; the index builds lock writes to the job table for their duration).
--
-- 1. Delayed jobs off the hot path. A queued job whose start_after lies in the future is
--    "waiting" (delayed on send, waiting to retry, snoozed). Waiting jobs are not in the claim
--    index, so a claim reads O(batch) index entries however many of them a queue holds. They sit
--    in job_queued, keyed (name, waiting, start_after): the claim promotes the due ones from its
--    head (waiting := false, in the claim statement itself, so a job is claimable exactly at its
--    start_after), and the next wake-up instant is its first entry. The state (created/retry) is
--    untouched, so queue policies and the API see the same states as before.
-- 2. Constant-cost counts. Statement-level triggers keep per-(queue, state, waiting) counters in
--    job_count, one row per backend (shard = pg_backend_pid()): concurrent workers never wait on
--    each other's counter rows, and stats()/ready_count() sum a few rows instead of scanning jobs.
--    Maintenance folds the rows of ended backends into shard 0. job_rate counts completions per
--    minute for the throughput figure.
-- 3. Maintenance by index: job_purge (when a finished job may be deleted) and job_keep (when a
--    queued job expires) make a pass with nothing due an index probe.
-- 4. Churn: heartbeats no longer touch an indexed column (job_active is keyed on started_on), so
--    they are HOT updates; a fillfactor leaves room for them on the page.

ALTER TABLE {schema}.job ADD COLUMN waiting boolean NOT NULL DEFAULT false;

UPDATE {schema}.job SET waiting = true WHERE state < 'active' AND start_after > now();

-- The claim path: ready (not waiting) jobs only, priority then age.
DROP INDEX {schema}.job_ready;
CREATE INDEX job_ready ON {schema}.job (name, priority DESC, seq) WHERE state < 'active' AND NOT waiting;

-- Every queued job by readiness and start time: due waiting jobs to promote, the next wake-up
-- (first waiting entry), the oldest ready job (first non-waiting entry).
CREATE INDEX job_queued ON {schema}.job (name, waiting, start_after) WHERE state < 'active';

-- Crash recovery reads the (few) active jobs; keyed on a column heartbeats do not change.
DROP INDEX {schema}.job_active;
CREATE INDEX job_active ON {schema}.job (started_on) WHERE state = 'active';

-- When a finished job may be purged. Adding a number of seconds does not depend on the time
-- zone, so the function is immutable in fact (timestamptz + interval is only marked stable
-- because of day and month units).
CREATE FUNCTION {schema}.purge_at(completed_on timestamptz, delete_after double precision)
RETURNS timestamptz LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT completed_on + delete_after * interval '1 second'
$$;

DROP INDEX {schema}.job_finished;
CREATE INDEX job_purge ON {schema}.job ({schema}.purge_at(completed_on, delete_after)) WHERE state > 'active';

-- Queued jobs by retention deadline (expire_queued).
CREATE INDEX job_keep ON {schema}.job (keep_until) WHERE state < 'active';

ALTER TABLE {schema}.job SET (
    fillfactor = 90,
    autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_vacuum_insert_scale_factor = 0.05,
    autovacuum_analyze_scale_factor = 0.02
);

-- ---------------------------------------------------------------------------------- counters

CREATE TABLE {schema}.job_count (
    name     text NOT NULL,
    state    {schema}.job_state NOT NULL,
    waiting  boolean NOT NULL,
    shard    integer NOT NULL,  -- pg_backend_pid() of the writer; 0 = folded by maintenance
    n        bigint NOT NULL,
    PRIMARY KEY (name, state, waiting, shard)
) WITH (fillfactor = 50, autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_scale_factor = 0);

CREATE TABLE {schema}.job_rate (
    name       text NOT NULL,
    minute     timestamptz NOT NULL,
    shard      integer NOT NULL,
    completed  bigint NOT NULL,
    PRIMARY KEY (name, minute, shard)
) WITH (fillfactor = 50, autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_scale_factor = 0);

INSERT INTO {schema}.job_count (name, state, waiting, shard, n)
SELECT name, state, waiting, 0, count(*) FROM {schema}.job GROUP BY name, state, waiting;

-- Rows are written in key order, so two transactions of backends that share a shard (a reused
-- pid meeting the fold) take their row locks in the same order and cannot deadlock each other.
CREATE FUNCTION {schema}.count_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {schema}.job_count AS c (name, state, waiting, shard, n)
    SELECT name, state, waiting, pg_backend_pid(), count(*) FROM new_jobs
    GROUP BY name, state, waiting ORDER BY name, state, waiting
    ON CONFLICT (name, state, waiting, shard) DO UPDATE SET n = c.n + EXCLUDED.n;
    RETURN NULL;
END
$$;

CREATE FUNCTION {schema}.count_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {schema}.job_count AS c (name, state, waiting, shard, n)
    SELECT name, state, waiting, pg_backend_pid(), sum(d) FROM (
        SELECT name, state, waiting, 1 AS d FROM new_jobs
        UNION ALL
        SELECT name, state, waiting, -1 FROM old_jobs) x
    GROUP BY name, state, waiting HAVING sum(d) <> 0 ORDER BY name, state, waiting
    ON CONFLICT (name, state, waiting, shard) DO UPDATE SET n = c.n + EXCLUDED.n;
    INSERT INTO {schema}.job_rate AS r (name, minute, shard, completed)
    SELECT name, date_trunc('minute', now()), pg_backend_pid(), sum(d) FROM (
        SELECT name, 1 AS d FROM new_jobs WHERE state = 'completed'
        UNION ALL
        SELECT name, -1 FROM old_jobs WHERE state = 'completed') x
    GROUP BY name HAVING sum(d) > 0 ORDER BY name
    ON CONFLICT (name, minute, shard) DO UPDATE SET completed = r.completed + EXCLUDED.completed;
    RETURN NULL;
END
$$;

CREATE FUNCTION {schema}.count_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {schema}.job_count AS c (name, state, waiting, shard, n)
    SELECT name, state, waiting, pg_backend_pid(), -count(*) FROM old_jobs
    GROUP BY name, state, waiting ORDER BY name, state, waiting
    ON CONFLICT (name, state, waiting, shard) DO UPDATE SET n = c.n + EXCLUDED.n;
    RETURN NULL;
END
$$;

CREATE FUNCTION {schema}.count_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM {schema}.job_count;
    DELETE FROM {schema}.job_rate;
    RETURN NULL;
END
$$;

CREATE TRIGGER job_count_insert AFTER INSERT ON {schema}.job
    REFERENCING NEW TABLE AS new_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.count_insert();
CREATE TRIGGER job_count_update AFTER UPDATE ON {schema}.job
    REFERENCING OLD TABLE AS old_jobs NEW TABLE AS new_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.count_update();
CREATE TRIGGER job_count_delete AFTER DELETE ON {schema}.job
    REFERENCING OLD TABLE AS old_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.count_delete();
CREATE TRIGGER job_count_truncate AFTER TRUNCATE ON {schema}.job
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.count_truncate();

-- Ready jobs of one queue, exact: the settled ready jobs from the counters plus the due waiting
-- jobs no claim has promoted yet (an index range the claims and the supervisor keep short).
CREATE OR REPLACE FUNCTION {schema}.ready_count(queue_name text) RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT COALESCE((SELECT sum(n) FROM {schema}.job_count
                     WHERE name = queue_name AND state < 'active' AND NOT waiting), 0)::bigint
         + (SELECT count(*) FROM {schema}.job
            WHERE name = queue_name AND state < 'active' AND waiting AND start_after <= now())
$$;

-- The failure path again (body of version 2), now marking a retry with a delay as waiting.
CREATE OR REPLACE FUNCTION {schema}.fail_jobs(p_ids uuid[], p_leases uuid[], p_errors jsonb[], p_delays double precision[], p_final boolean[])
RETURNS TABLE (id uuid, state {schema}.job_state, start_after timestamptz, dead_letter_id uuid)
LANGUAGE sql VOLATILE AS $$
    WITH input AS (
        SELECT d.id, d.lease, d.error, d.delay, COALESCE(d.final, false) AS final
        FROM unnest(p_ids, p_leases, p_errors, p_delays, p_final) AS d(id, lease, error, delay, final)
    ), target AS (
        SELECT j.id, j.retry_count < j.retry_limit AND NOT i.final AS can_retry, i.error,
               COALESCE(i.delay, {schema}.retry_delay(j.retry_delay, j.retry_backoff, j.retry_delay_max, j.retry_count)) AS delay
        FROM {schema}.job j JOIN input i ON j.id = i.id
        WHERE j.state = 'active' AND (i.lease IS NULL OR j.lease = i.lease)
        FOR UPDATE OF j
    ), upd AS (
        UPDATE {schema}.job j SET
            state = CASE WHEN t.can_retry THEN 'retry'::{schema}.job_state ELSE 'failed'::{schema}.job_state END,
            retry_count = CASE WHEN t.can_retry THEN j.retry_count + 1 ELSE j.retry_count END,
            start_after = CASE WHEN t.can_retry THEN now() + t.delay * interval '1 second' ELSE j.start_after END,
            waiting = t.can_retry AND t.delay > 0,
            completed_on = CASE WHEN t.can_retry THEN NULL ELSE now() END,
            output = t.error,
            lease = NULL,
            heartbeat_on = NULL
        FROM target t WHERE j.id = t.id
        RETURNING j.*
    ), dlq AS (
        INSERT INTO {schema}.job (name, priority, data, headers, policy, retry_limit, retry_delay,
                                  retry_backoff, retry_delay_max, expire_in, heartbeat, delete_after,
                                  keep_until, dead_letter)
        SELECT q.name, u.priority, u.data,
               COALESCE(u.headers, '{{}}'::jsonb) || jsonb_build_object('dead_letter', jsonb_build_object(
                   'queue', u.name, 'id', u.id, 'error', u.output, 'attempts', u.retry_count + 1,
                   'failed_on', now())),
               q.policy, q.retry_limit, q.retry_delay, q.retry_backoff, q.retry_delay_max, q.expire_in,
               q.heartbeat, q.delete_after, now() + q.retention * interval '1 second', q.dead_letter
        FROM upd u JOIN {schema}.queue q ON q.name = u.dead_letter
        WHERE u.state = 'failed'
        RETURNING id, headers #>> '{{dead_letter,id}}' AS source_id
    )
    SELECT u.id, u.state, u.start_after, d.id
    FROM upd u LEFT JOIN dlq d ON d.source_id = u.id::text
$$;

ANALYZE {schema}.job;
