-- Queue schema, version 2: the failure path as one function, shared by handler failures,
-- crash recovery (lost heartbeat) and run-time expiry, so retry/backoff/dead-letter rules
-- live in exactly one place.

-- Backoff for the (retry_count + 1)-th retry: a fixed delay, or exponential with "equal jitter"
-- (half the exponential step fixed, half random) so a burst of failures does not retry in lockstep;
-- capped by retry_delay_max.
CREATE FUNCTION {schema}.retry_delay(p_delay double precision, p_backoff boolean, p_max double precision, p_retry_count integer)
RETURNS double precision LANGUAGE sql VOLATILE AS $$
    SELECT LEAST(
        CASE WHEN p_backoff
             THEN (p_delay * power(2, LEAST(p_retry_count, 30))) / 2 * (1 + random())
             ELSE p_delay END,
        COALESCE(p_max, 'infinity'::double precision))
$$;

-- Start of the throttle slot a job's options put it in (NULL without singleton_seconds); with
-- singleton_offset = 1 it is the next slot (debounce).
CREATE FUNCTION {schema}.slot_start(o jsonb) RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT to_timestamp(
        (floor(extract(epoch FROM now()) / (o->>'singleton_seconds')::double precision)
         + COALESCE((o->>'singleton_offset')::int, 0))
        * (o->>'singleton_seconds')::double precision)
$$;

-- Fail active jobs whose (id, lease) match. A job with attempts left goes to 'retry' with
-- start_after = now() + delay; otherwise to 'failed', and a copy goes to its dead-letter queue
-- carrying the error and where it came from. p_delays overrides the computed backoff per job
-- (NULL entry = use the job's retry settings); p_final marks jobs to fail without retrying. Returns the new state of every job it touched.
CREATE FUNCTION {schema}.fail_jobs(p_ids uuid[], p_leases uuid[], p_errors jsonb[], p_delays double precision[], p_final boolean[])
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

