-- Queue schema, version 6: a lighter claim and completion path.
--
-- 1. Job search keeps one index per state group instead of one over every row. An index over
--    all rows gains an entry at every state change (a claim and a completion are not HOT
--    updates), so job_search cost every claim an index insertion it never reads. Partial
--    indexes only gain entries for rows entering their group: job_search_queued on send and on
--    retry, job_search_finished on completion; active jobs (a few, bounded by the workers'
--    concurrency) are found through job_active.
-- 2. The counter trigger runs one statement per firing instead of two.
-- 3. job_purge is keyed by an expression PostgreSQL inlines (no function call per completion).
-- 4. A snooze no longer records an attempt error (see the trigger at the end).

DROP INDEX {schema}.job_search;
CREATE INDEX job_search_queued ON {schema}.job (name, state, seq) WHERE state < 'active';
CREATE INDEX job_search_finished ON {schema}.job (name, state, seq) WHERE state > 'active';

-- One statement per firing: the deltas are computed once and feed both counters.
CREATE OR REPLACE FUNCTION {schema}.count_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH delta AS (
        SELECT name, state, waiting, sum(d) AS n FROM (
            SELECT name, state, waiting, 1 AS d FROM new_jobs
            UNION ALL
            SELECT name, state, waiting, -1 FROM old_jobs) x
        GROUP BY name, state, waiting HAVING sum(d) <> 0
    ), rate AS (
        INSERT INTO {schema}.job_rate AS r (name, minute, shard, completed)
        SELECT name, date_trunc('minute', now()), pg_backend_pid(), sum(n) FROM delta
        WHERE state = 'completed' GROUP BY name HAVING sum(n) > 0 ORDER BY name
        ON CONFLICT (name, minute, shard) DO UPDATE SET completed = r.completed + EXCLUDED.completed
    )
    INSERT INTO {schema}.job_count AS c (name, state, waiting, shard, n)
    SELECT name, state, waiting, pg_backend_pid(), n FROM delta ORDER BY name, state, waiting
    ON CONFLICT (name, state, waiting, shard) DO UPDATE SET n = c.n + EXCLUDED.n;
    RETURN NULL;
END
$$;

-- job_purge's key again, now computed inline. Version 3's purge_at was declared immutable over
-- a stable operator (timestamptz + interval), so PostgreSQL could not inline it and called it
-- as a function for every completed job. In UTC wall time (timestamp + interval) every step is
-- immutable: the function inlines into the index expression and into the purge statement.
DROP INDEX {schema}.job_purge;
DROP FUNCTION {schema}.purge_at(timestamptz, double precision);
CREATE FUNCTION {schema}.purge_at(completed_on timestamptz, delete_after double precision)
RETURNS timestamp LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (completed_on AT TIME ZONE 'UTC') + delete_after * interval '1 second'
$$;
CREATE INDEX job_purge ON {schema}.job ({schema}.purge_at(completed_on, delete_after)) WHERE state > 'active';

-- Attempt errors: only a failure appends one. A snooze of a job that failed before also moves it
-- from 'active' to 'retry' (the state a failure leads to) but is not an attempt: it keeps
-- retry_count, which a failure that retries raises.
DROP TRIGGER job_attempt_error ON {schema}.job;
CREATE TRIGGER job_attempt_error BEFORE UPDATE OF state ON {schema}.job
    FOR EACH ROW WHEN (OLD.state = 'active' AND (NEW.state = 'failed'
                       OR (NEW.state = 'retry' AND NEW.retry_count > OLD.retry_count)))
    EXECUTE FUNCTION {schema}.record_attempt_error();
