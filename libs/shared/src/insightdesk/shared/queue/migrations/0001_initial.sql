-- Queue schema, version 1. {schema} is replaced by the quoted schema identifier.
-- Runs inside one transaction under an advisory lock (see migrator.py).

CREATE TYPE {schema}.job_state AS ENUM ('created', 'retry', 'active', 'completed', 'cancelled', 'failed');

CREATE TYPE {schema}.queue_policy AS ENUM ('standard', 'short', 'singleton', 'stately', 'exclusive');

CREATE TABLE {schema}.queue (
    name             text PRIMARY KEY,
    policy           {schema}.queue_policy NOT NULL DEFAULT 'standard',
    priority         integer NOT NULL DEFAULT 0,
    retry_limit      integer NOT NULL DEFAULT 2 CHECK (retry_limit >= 0),
    retry_delay      double precision NOT NULL DEFAULT 0 CHECK (retry_delay >= 0),
    retry_backoff    boolean NOT NULL DEFAULT false,
    retry_delay_max  double precision CHECK (retry_delay_max IS NULL OR retry_delay_max >= 0),
    expire_in        double precision NOT NULL DEFAULT 900 CHECK (expire_in > 0),
    heartbeat        double precision CHECK (heartbeat IS NULL OR heartbeat > 0),
    retention        double precision NOT NULL DEFAULT 1209600 CHECK (retention > 0),
    delete_after     double precision NOT NULL DEFAULT 604800 CHECK (delete_after >= 0),
    dead_letter      text REFERENCES {schema}.queue (name) ON DELETE SET NULL,
    created_on       timestamptz NOT NULL DEFAULT now(),
    updated_on       timestamptz NOT NULL DEFAULT now(),
    CHECK (dead_letter IS DISTINCT FROM name)
);

CREATE TABLE {schema}.job (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    seq              bigint GENERATED ALWAYS AS IDENTITY,
    name             text NOT NULL,  -- no foreign key: the insert statement checks the queue, and
                                     -- a per-row FK check would cost a lookup per job
    priority         integer NOT NULL DEFAULT 0,
    data             jsonb,
    headers          jsonb,
    state            {schema}.job_state NOT NULL DEFAULT 'created',
    policy           {schema}.queue_policy NOT NULL DEFAULT 'standard',
    retry_limit      integer NOT NULL DEFAULT 2,
    retry_count      integer NOT NULL DEFAULT 0,
    retry_delay      double precision NOT NULL DEFAULT 0,
    retry_backoff    boolean NOT NULL DEFAULT false,
    retry_delay_max  double precision,
    expire_in        double precision NOT NULL DEFAULT 900,
    heartbeat        double precision,
    delete_after     double precision NOT NULL DEFAULT 604800,
    keep_until       timestamptz NOT NULL DEFAULT now() + interval '14 days',
    start_after      timestamptz NOT NULL DEFAULT now(),
    singleton_key    text,
    singleton_on     timestamptz,
    dead_letter      text,
    created_on       timestamptz NOT NULL DEFAULT now(),
    started_on       timestamptz,
    heartbeat_on     timestamptz,
    completed_on     timestamptz,
    lease            uuid,
    output           jsonb
);

-- Claim path: ready jobs of one queue, priority then age. Only queued rows are in it, so a
-- claimed or finished job costs this index nothing.
CREATE INDEX job_ready ON {schema}.job (name, priority DESC, seq) WHERE state < 'active';

-- Crash recovery scans only the (few) active jobs.
CREATE INDEX job_active ON {schema}.job (heartbeat_on) WHERE state = 'active';

-- Retention purge of finished jobs.
CREATE INDEX job_finished ON {schema}.job (completed_on) WHERE state > 'active';

-- Lookup by key for ops and debounce.
CREATE INDEX job_singleton_key ON {schema}.job (name, singleton_key) WHERE singleton_key IS NOT NULL;

-- Queue policies, enforced by the database so racing senders and workers cannot break them.
-- short: at most one queued job per (queue, key).
CREATE UNIQUE INDEX job_policy_short ON {schema}.job (name, COALESCE(singleton_key, ''))
    WHERE state = 'created' AND policy = 'short';
-- singleton: at most one active job per (queue, key).
CREATE UNIQUE INDEX job_policy_singleton ON {schema}.job (name, COALESCE(singleton_key, ''))
    WHERE state = 'active' AND policy IN ('singleton', 'stately');
-- stately: at most one job per (queue, key) in each of created, retry and active.
CREATE UNIQUE INDEX job_policy_stately ON {schema}.job (name, state, COALESCE(singleton_key, ''))
    WHERE state < 'active' AND policy = 'stately';
-- exclusive: at most one job per (queue, key) that is queued or active.
CREATE UNIQUE INDEX job_policy_exclusive ON {schema}.job (name, COALESCE(singleton_key, ''))
    WHERE state <= 'active' AND policy = 'exclusive';
-- throttle/debounce: one job per (queue, key, time slot) unless cancelled.
CREATE UNIQUE INDEX job_throttle ON {schema}.job (name, singleton_on, COALESCE(singleton_key, ''))
    WHERE singleton_on IS NOT NULL AND state <> 'cancelled';

CREATE TABLE {schema}.subscription (
    event       text NOT NULL,
    name        text NOT NULL REFERENCES {schema}.queue (name) ON DELETE CASCADE,
    created_on  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event, name)
);

CREATE TABLE {schema}.schedule (
    name          text PRIMARY KEY,
    queue         text NOT NULL REFERENCES {schema}.queue (name) ON DELETE CASCADE,
    cron          text NOT NULL,
    timezone      text NOT NULL DEFAULT 'UTC',
    data          jsonb,
    options       jsonb NOT NULL DEFAULT '{{}}'::jsonb,
    missed        text NOT NULL DEFAULT 'skip' CHECK (missed IN ('skip', 'catch_up')),
    grace         double precision NOT NULL DEFAULT 0 CHECK (grace >= 0),
    last_slot     timestamptz,
    created_on    timestamptz NOT NULL DEFAULT now(),
    updated_on    timestamptz NOT NULL DEFAULT now()
);

-- Wake workers at commit: one notification per queue touched by an insert statement.
CREATE FUNCTION {schema}.notify_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_ARGV[0], n.name) FROM (SELECT DISTINCT name FROM new_jobs) n;
    RETURN NULL;
END
$$;

CREATE TRIGGER job_notify AFTER INSERT ON {schema}.job
    REFERENCING NEW TABLE AS new_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.notify_insert({channel});

-- Ready jobs of one queue: the single number a KEDA postgresql scaler needs.
CREATE FUNCTION {schema}.ready_count(queue_name text) RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT count(*) FROM {schema}.job
    WHERE name = queue_name AND state < 'active' AND start_after <= now()
$$;
