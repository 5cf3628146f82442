-- Queue schema, version 4: what the operations console needs of the engine. Pause flag per queue, the
-- worker registry, per-queue statistics history, every attempt's error, and an index that lets
-- job search page through one queue and state without scanning the job table.

-- A paused queue still accepts jobs; its workers claim nothing (the claim statements check
-- the flag, so it holds in every process at once and across restarts).
ALTER TABLE {schema}.queue ADD COLUMN paused boolean NOT NULL DEFAULT false;

-- Every running worker, refreshed by its process; rows whose heartbeat stops expire.
CREATE TABLE {schema}.worker (
    id            uuid PRIMARY KEY,
    host          text NOT NULL,
    pid           integer NOT NULL,
    queue         text NOT NULL,
    concurrency   integer NOT NULL,
    started_on    timestamptz NOT NULL DEFAULT now(),
    heartbeat_on  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX worker_queue ON {schema}.worker (queue);

-- One row per queue every 10 seconds (the slot start), written by whichever supervisor gets
-- there first; bounded by retention in the snapshot statement itself.
CREATE TABLE {schema}.queue_history (
    slot        timestamptz NOT NULL,
    name        text NOT NULL,
    ready       bigint NOT NULL,
    delayed     bigint NOT NULL,
    active      bigint NOT NULL,
    completed   bigint NOT NULL,
    failed      bigint NOT NULL,
    wait_p50    double precision,
    wait_p95    double precision,
    run_p50     double precision,
    run_p95     double precision,
    PRIMARY KEY (name, slot)
);
CREATE INDEX queue_history_slot ON {schema}.queue_history (slot);

-- Every failed attempt's error, appended when a job leaves 'active' for 'retry' or 'failed'
-- (only the failure path pays for it; output keeps the latest error as before).
ALTER TABLE {schema}.job ADD COLUMN errors jsonb;

CREATE FUNCTION {schema}.record_attempt_error() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.errors := COALESCE(OLD.errors, '[]'::jsonb) || jsonb_build_array(jsonb_build_object(
        'attempt', OLD.retry_count + 1, 'error', NEW.output, 'started_on', OLD.started_on,
        'failed_on', now()));
    RETURN NEW;
END
$$;

CREATE TRIGGER job_attempt_error BEFORE UPDATE OF state ON {schema}.job
    FOR EACH ROW WHEN (OLD.state = 'active' AND NEW.state IN ('retry', 'failed'))
    EXECUTE FUNCTION {schema}.record_attempt_error();

-- Job search and the console's queue page: one queue and state, newest first, keyset by seq.
CREATE INDEX job_search ON {schema}.job (name, state, seq);

-- The history snapshot reads the jobs finished in the last slot (counts and wait/run
-- percentiles) through this index instead of scanning the finished jobs.
CREATE INDEX job_completed ON {schema}.job (completed_on) WHERE state > 'active';
