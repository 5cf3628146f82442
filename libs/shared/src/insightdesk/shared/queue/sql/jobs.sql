-- Hot-path statements of the engine. "{schema}" is the quoted schema identifier; parameters are
-- psycopg named placeholders. Every statement is safe to run twice.

-- fragment: job_columns
id, name, priority, data, headers, policy, retry_limit, retry_delay, retry_backoff, retry_delay_max,
expire_in, heartbeat, delete_after, keep_until, start_after, singleton_key, singleton_on, dead_letter,
waiting

-- fragment: complete_done
-- The finished jobs a claim statement carries: complete them (only where the lease still
-- matches: a job re-claimed by another worker is not ours to finish). Jobs are found by id
-- (job_pkey), never through job_active: "state::text" keeps the planner off that index. Its
-- estimate for active rows comes from the last ANALYZE, which often saw none; a generic plan
-- made from it walked every active job of every queue for each batch, O(active x batch).
done AS (
    UPDATE {schema}.job j
    SET state = 'completed', completed_on = now(), output = d.output, heartbeat_on = NULL
    FROM unnest(%(done_ids)b::uuid[], %(done_leases)b::uuid[], %(done_outputs)b::text[]::jsonb[])
         AS d(id, lease, output)
    WHERE j.id = d.id AND j.lease = d.lease AND j.state::text = 'active'
    RETURNING j.id
)

-- fragment: claim_ready
-- The start of both claim statements: "wanted", every queue the consumer claims for, each with
-- its own limit (its free slots; a paused queue claims nothing: the flag is read here, so a
-- pause holds in every process at once), and "ready", the head of job_ready in each (waiting
-- jobs are not in it), priority then age, skipping rows other workers hold.
wanted AS (
    SELECT w.* FROM unnest(%(names)s::text[], %(limits)s::int[]) AS w(name, lim)
    WHERE NOT EXISTS (SELECT 1 FROM {schema}.queue p WHERE p.name = w.name AND p.paused)
), ready AS (
    SELECT c.* FROM wanted w CROSS JOIN LATERAL (
        SELECT id, name, priority, seq FROM {schema}.job
        WHERE name = w.name AND state < 'active' AND NOT waiting
        ORDER BY priority DESC, seq
        LIMIT w.lim
        FOR UPDATE SKIP LOCKED) c
)

-- fragment: claim_picked
-- The end of both claim statements, from "picked" (the rows to hand out) and "due" (due waiting
-- jobs locked by the claim): picked rows become active under a new lease; due rows not picked
-- only lose their waiting mark. Returns the picked rows named as the fields of the Job a handler
-- receives (the store maps rows onto Job by these names and ignores any other column).
touched AS (
    SELECT id, true AS pick FROM picked
    UNION ALL
    SELECT id, false FROM due WHERE id NOT IN (SELECT id FROM picked)
), claimed AS (
    UPDATE {schema}.job j
    SET state = CASE WHEN t.pick THEN 'active'::{schema}.job_state ELSE j.state END,
        waiting = false,
        started_on = CASE WHEN t.pick THEN now() ELSE j.started_on END,
        heartbeat_on = CASE WHEN t.pick THEN now() ELSE j.heartbeat_on END,
        lease = CASE WHEN t.pick THEN gen_random_uuid() ELSE j.lease END,
        heartbeat = CASE WHEN t.pick THEN COALESCE(j.heartbeat, %(default_heartbeat)s) ELSE j.heartbeat END
    FROM touched t WHERE j.id = t.id
    RETURNING t.pick, j.seq, j.id, j.name AS queue, j.lease, j.data, j.headers,
    j.retry_count, j.retry_limit, j.expire_in, j.heartbeat, j.priority, j.singleton_key,
    j.created_on, j.start_after
)
SELECT * FROM claimed WHERE pick
ORDER BY priority DESC, seq;

-- fragment: job_values
-- One job row from "t": a queue row (q.*) plus the job's id, data, headers and its option
-- overrides "o" (JSON, see JobOptions.to_wire); options fall back to the queue's defaults.
t.id, t.name,
COALESCE((t.o->>'priority')::int, t.priority),
t.data, t.headers, t.policy,
COALESCE((t.o->>'retry_limit')::int, t.retry_limit),
COALESCE((t.o->>'retry_delay')::double precision, t.retry_delay),
COALESCE((t.o->>'retry_backoff')::boolean, t.retry_backoff),
COALESCE((t.o->>'retry_delay_max')::double precision, t.retry_delay_max),
COALESCE((t.o->>'expire_in')::double precision, t.expire_in),
COALESCE((t.o->>'heartbeat')::double precision, t.heartbeat),
COALESCE((t.o->>'delete_after')::double precision, t.delete_after),
now() + COALESCE((t.o->>'retention')::double precision, t.retention) * interval '1 second',
GREATEST(
    COALESCE((t.o->>'start_after')::timestamptz,
             now() + COALESCE((t.o->>'delay')::double precision, 0) * interval '1 second'),
    CASE WHEN (t.o->>'singleton_offset')::int > 0 THEN {schema}.slot_start(t.o) END,
    now()),
t.o->>'singleton_key',
{schema}.slot_start(t.o),
COALESCE(t.o->>'dead_letter', t.dead_letter),
-- waiting: start_after (above) lies in the future, so the job stays out of the claim index
COALESCE((t.o->>'start_after')::timestamptz,
         now() + COALESCE((t.o->>'delay')::double precision, 0) * interval '1 second') > now()
    OR COALESCE(CASE WHEN (t.o->>'singleton_offset')::int > 0 THEN {schema}.slot_start(t.o) END > now(), false)

-- name: insert_job
-- One job into one queue: the lean path of send(). No row back means a policy, throttle or an
-- existing id rejected it, or the queue does not exist (the caller tells these apart).
INSERT INTO {schema}.job ({job_columns})
SELECT {job_values}
FROM (SELECT q.*, COALESCE(%(id)s::uuid, gen_random_uuid()) AS id, %(data)s::jsonb AS data,
             %(headers)s::jsonb AS headers, %(opts)s::jsonb AS o
      FROM {schema}.queue q WHERE q.name = %(name)s) t
ON CONFLICT DO NOTHING
RETURNING id;

-- name: queue_exists
SELECT EXISTS (SELECT 1 FROM {schema}.queue WHERE name = %(name)s);

-- name: insert_jobs
-- Insert one job per input row into one queue (send_many) or into every queue subscribed to an
-- event (publish). Rows a policy, throttle or an existing id rejects are skipped (ON CONFLICT DO
-- NOTHING), so racing senders never error. Returns the ids in input order, NULL where rejected.
WITH q AS (
    SELECT * FROM {schema}.queue WHERE name = %(name)s
    UNION ALL
    SELECT q.* FROM {schema}.queue q JOIN {schema}.subscription s ON s.name = q.name
    WHERE s.event = %(event)s
), src AS (
    SELECT COALESCE(u.id, gen_random_uuid()) AS id, u.ord, u.data, u.headers,
           COALESCE(u.opts, %(common)s::jsonb) AS o
    -- binary parameters: no array-literal quoting of the JSON texts on either side
    FROM unnest(%(ids)b::uuid[], %(data)b::text[]::jsonb[], %(headers)b::text[]::jsonb[],
                %(opts)b::text[]::jsonb[])
         WITH ORDINALITY AS u(id, data, headers, opts, ord)
), ins AS (
    INSERT INTO {schema}.job ({job_columns})
    SELECT {job_values}
    FROM (SELECT q.*, CASE WHEN %(event)s::text IS NULL THEN s.id ELSE gen_random_uuid() END AS id,
                 s.data, s.headers, s.o
          FROM src s CROSS JOIN q) t
    ON CONFLICT DO NOTHING
    RETURNING id
)
SELECT
    (SELECT count(*) FROM q) AS queues,
    CASE WHEN %(event)s::text IS NULL THEN
        (SELECT array_agg(i.id ORDER BY s.ord) FROM src s LEFT JOIN ins i ON i.id = s.id)
    ELSE (SELECT array_agg(i.id) FROM ins i) END AS ids;

-- name: fetch
-- One round trip per worker cycle: complete the jobs that finished since the last cycle (only
-- where the lease still matches: a job re-claimed by another worker is not ours to finish) and
-- claim, in each queue of %(names)s, up to its entry of %(limits)s ready jobs, priority then
-- age, skipping rows other workers hold: one statement for all the queues a consumer serves.
-- Ready jobs come from the head of job_ready (waiting jobs are not in it); waiting jobs whose
-- start_after has come are promoted from the head of job_queued in the same statement and
-- compete with them, so a delayed job is claimable exactly at its start_after and the claim
-- reads O(limit) index entries however many jobs wait. Promoted but unpicked jobs just lose
-- their waiting mark (each row is updated once per statement).
WITH {complete_done}, {claim_ready}, due AS (
    SELECT c.* FROM wanted w CROSS JOIN LATERAL (
        SELECT id, name, priority, seq FROM {schema}.job
        WHERE name = w.name AND state < 'active' AND waiting AND start_after <= now()
        ORDER BY start_after
        LIMIT w.lim + 100
        FOR UPDATE SKIP LOCKED) c
), picked AS (
    SELECT c.id FROM wanted w CROSS JOIN LATERAL (
        SELECT u.id FROM (SELECT * FROM ready UNION ALL SELECT * FROM due) u
        WHERE u.name = w.name
        ORDER BY u.priority DESC, u.seq
        LIMIT w.lim) c
), {claim_picked}

-- name: fetch_ready
-- fetch without the promotion of due waiting jobs: ready jobs only, from the head of job_ready.
-- The consumer sends it while a queue's claims come back full and it promoted less than
-- PROMOTE_EVERY ago (the statement is the cheaper one by the "due" branch's index probe and the
-- merge of the two candidate sets); when a claim comes back short it asks when the next waiting
-- job is due, and promotes with fetch from that instant on.
WITH {complete_done}, {claim_ready}, claimed AS (
    UPDATE {schema}.job j
    SET state = 'active', started_on = now(), heartbeat_on = now(), lease = gen_random_uuid(),
        heartbeat = COALESCE(j.heartbeat, %(default_heartbeat)s)
    FROM ready r WHERE j.id = r.id
    RETURNING j.seq, j.id, j.name AS queue, j.lease, j.data, j.headers,
    j.retry_count, j.retry_limit, j.expire_in, j.heartbeat, j.priority, j.singleton_key,
    j.created_on, j.start_after
)
SELECT * FROM claimed
ORDER BY priority DESC, seq;

-- name: fetch_keyed
-- fetch for singleton and stately queues: never claim a job whose key already has an active job
-- in the queue, and at most one job per key per claim. A race with another worker ends in a
-- unique violation (job_policy_singleton) that the worker treats as "try again". Due waiting
-- jobs are promoted and compete as in fetch.
WITH {complete_done}, due AS (
    SELECT id, COALESCE(singleton_key, '') AS k, priority, seq FROM {schema}.job
    WHERE name = %(name)s AND state < 'active' AND waiting AND start_after <= now()
      AND NOT EXISTS (SELECT 1 FROM {schema}.queue p WHERE p.name = %(name)s AND p.paused)
    ORDER BY start_after
    LIMIT %(limit)s + 100
    FOR UPDATE SKIP LOCKED
), candidates AS (
    SELECT c.id, COALESCE(c.singleton_key, '') AS k, c.priority, c.seq FROM {schema}.job c
    WHERE c.name = %(name)s AND c.state < 'active' AND NOT c.waiting
      AND NOT EXISTS (SELECT 1 FROM {schema}.queue p WHERE p.name = %(name)s AND p.paused)
      AND NOT EXISTS (
          SELECT 1 FROM {schema}.job a
          WHERE a.name = c.name AND a.state = 'active'
            AND COALESCE(a.singleton_key, '') = COALESCE(c.singleton_key, '')
            AND a.policy IN ('singleton', 'stately'))
    ORDER BY c.priority DESC, c.seq
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), pool AS (
    SELECT * FROM candidates
    UNION ALL
    SELECT d.* FROM due d
    WHERE NOT EXISTS (
        SELECT 1 FROM {schema}.job a
        WHERE a.name = %(name)s AND a.state = 'active' AND COALESCE(a.singleton_key, '') = d.k
          AND a.policy IN ('singleton', 'stately'))
), picked AS (
    SELECT DISTINCT ON (k) id FROM (
        SELECT * FROM pool ORDER BY priority DESC, seq LIMIT %(limit)s) p
    ORDER BY k, priority DESC, seq
), {claim_picked}

-- name: next_start
-- When the next waiting job of a queue becomes ready, so an idle worker sleeps exactly until
-- then instead of polling: the first waiting entry of job_queued, one index probe.
-- One statement for all the queues the consumer found empty.
SELECT w.name,
       (SELECT min(start_after) FROM {schema}.job j
        WHERE j.name = w.name AND j.state < 'active' AND j.waiting) AS next_start,
       now() AS db_now
FROM unnest(%(names)s::text[]) AS w(name)
-- a paused queue has nothing due: its worker sleeps until the resume's NOTIFY (or the poll)
WHERE NOT EXISTS (SELECT 1 FROM {schema}.queue p WHERE p.name = w.name AND p.paused);

-- name: fail
SELECT id, state, start_after, dead_letter_id
FROM {schema}.fail_jobs(%(ids)s::uuid[], %(leases)s::uuid[], %(errors)s::jsonb[], %(delays)s::double precision[],
                        %(final)s::boolean[]);

-- name: snooze
-- Put active jobs back in the queue without using an attempt: handler-requested snooze and
-- release of in-flight jobs on shutdown. A job of a short or stately queue whose key already
-- has a job waiting in the state it would return to yields to it (failed, PolicyConflict).
SELECT id FROM {schema}.snooze_jobs(%(ids)s::uuid[], %(leases)s::uuid[], %(delays)s::double precision[]);

-- name: heartbeat
-- By id, not through job_active (see complete_done).
UPDATE {schema}.job j SET heartbeat_on = now()
FROM unnest(%(ids)s::uuid[], %(leases)s::uuid[]) AS d(id, lease)
WHERE j.id = d.id AND j.lease = d.lease AND j.state::text = 'active'
RETURNING j.id;

-- name: complete
-- Complete jobs outside the worker's fetch cycle, e.g. inside a handler's own transaction. By
-- id, not through job_active (see complete_done).
UPDATE {schema}.job j
SET state = 'completed', completed_on = now(), output = d.output, heartbeat_on = NULL
FROM unnest(%(ids)s::uuid[], %(leases)s::uuid[], %(outputs)s::jsonb[]) AS d(id, lease, output)
WHERE j.id = d.id AND j.lease = d.lease AND j.state::text = 'active'
RETURNING j.id;
