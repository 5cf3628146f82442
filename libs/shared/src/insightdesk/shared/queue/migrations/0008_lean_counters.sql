-- Queue schema, version 8: the counters leave the hot path.
--
-- Until version 7 job_count counted every state, so a claim of k jobs upserted two counter rows
-- (created -k, active +k) and their completion two more (active -k, completed +k) plus the
-- per-minute completion row: five upserts per batch, most of the server-side cost a job added
-- over the engine before the counters. Now job_count counts only the states a job rests in
-- (created, retry, cancelled, failed), and a second column, total, counts every job of the
-- queue: the insert and delete triggers move it, state changes never do. The two hot states are
-- derived, exactly and in the same snapshot:
--   active    = jobs in state 'active', read through job_active (bounded by the running jobs)
--   completed = total - the counted states - active
-- A claim upserts one counter row, its completion only the per-minute completion row.
--
-- The recount below reads the job table once, under a lock that holds off writers (readers and
-- claims of other versions wait for it too: a short stop on a large table). Processes of version
-- 7 keep counting correctly (the triggers are the database's); their stats() shows active and
-- completed as 0 until they are replaced.

LOCK TABLE {schema}.job IN SHARE ROW EXCLUSIVE MODE;

ALTER TABLE {schema}.job_count ADD COLUMN total bigint NOT NULL DEFAULT 0;

DELETE FROM {schema}.job_count;
INSERT INTO {schema}.job_count (name, state, waiting, shard, n, total)
SELECT name, state, waiting, 0,
       CASE WHEN state IN ('active', 'completed') THEN 0 ELSE count(*) END, count(*)
FROM {schema}.job GROUP BY name, state, waiting;

CREATE OR REPLACE FUNCTION {schema}.count_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {schema}.job_count AS c (name, state, waiting, shard, n, total)
    SELECT name, state, waiting, pg_backend_pid(),
           count(*) FILTER (WHERE state NOT IN ('active', 'completed')), count(*)
    FROM new_jobs
    GROUP BY name, state, waiting ORDER BY name, state, waiting
    ON CONFLICT (name, state, waiting, shard)
        DO UPDATE SET n = c.n + EXCLUDED.n, total = c.total + EXCLUDED.total;
    RETURN NULL;
END
$$;

-- One statement per firing. The delta covers every state, so a statement that leaves completed
-- jobs completed adds no completions; counters take the resting states' part of it.
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
    SELECT name, state, waiting, pg_backend_pid(), n FROM delta
    WHERE state NOT IN ('active', 'completed')
    ORDER BY name, state, waiting
    ON CONFLICT (name, state, waiting, shard) DO UPDATE SET n = c.n + EXCLUDED.n;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION {schema}.count_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {schema}.job_count AS c (name, state, waiting, shard, n, total)
    SELECT name, state, waiting, pg_backend_pid(),
           -count(*) FILTER (WHERE state NOT IN ('active', 'completed')), -count(*)
    FROM old_jobs
    GROUP BY name, state, waiting ORDER BY name, state, waiting
    ON CONFLICT (name, state, waiting, shard)
        DO UPDATE SET n = c.n + EXCLUDED.n, total = c.total + EXCLUDED.total;
    RETURN NULL;
END
$$;
