-- Queue schema, version 6: a lighter claim and completion path.
--
-- 1. Job search keeps one index per state group instead of one over every row. An index over
--    all rows gains an entry at every state change (a claim and a completion are not HOT
--    updates), so job_search cost every claim an index insertion it never reads. Partial
--    indexes only gain entries for rows entering their group: job_search_queued on send and on
--    retry, job_search_finished on completion; active jobs (a few, bounded by the workers'
--    concurrency) are found through job_active.
-- 2. The counter trigger writes the per-minute completion counter only when the statement
--    completed jobs (a plain claim changes no completion count).

DROP INDEX {schema}.job_search;
CREATE INDEX job_search_queued ON {schema}.job (name, state, seq) WHERE state < 'active';
CREATE INDEX job_search_finished ON {schema}.job (name, state, seq) WHERE state > 'active';

CREATE OR REPLACE FUNCTION {schema}.count_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {schema}.job_count AS c (name, state, waiting, shard, n)
    SELECT name, state, waiting, pg_backend_pid(), sum(d) FROM (
        SELECT name, state, waiting, 1 AS d FROM new_jobs
        UNION ALL
        SELECT name, state, waiting, -1 FROM old_jobs) x
    GROUP BY name, state, waiting HAVING sum(d) <> 0 ORDER BY name, state, waiting
    ON CONFLICT (name, state, waiting, shard) DO UPDATE SET n = c.n + EXCLUDED.n;
    IF EXISTS (SELECT 1 FROM new_jobs WHERE state = 'completed') THEN
        INSERT INTO {schema}.job_rate AS r (name, minute, shard, completed)
        SELECT name, date_trunc('minute', now()), pg_backend_pid(), sum(d) FROM (
            SELECT name, 1 AS d FROM new_jobs WHERE state = 'completed'
            UNION ALL
            SELECT name, -1 FROM old_jobs WHERE state = 'completed') x
        GROUP BY name HAVING sum(d) > 0 ORDER BY name
        ON CONFLICT (name, minute, shard) DO UPDATE SET completed = r.completed + EXCLUDED.completed;
    END IF;
    RETURN NULL;
END
$$;
