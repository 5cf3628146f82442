-- Queue schema, version 10: settling jobs finds them by id.
--
-- fail_jobs_set (the failure path), fail_one_final and snooze_jobs matched the jobs handed to
-- them with "state = 'active'" in a join on id. The planner's estimate for active rows comes
-- from the last ANALYZE, which often saw none; it then read job_active (every active job of
-- every queue) and filtered by id: a failure or snooze of 10 jobs among 20,000 running ones
-- took 17 and 65 ms. "state::text = 'active'" keeps these statements on job_pkey, as the
-- completions already are (version 9's statements). Same arguments, same results.

CREATE OR REPLACE FUNCTION {schema}.fail_jobs_set(p_ids uuid[], p_leases uuid[], p_errors jsonb[], p_delays double precision[], p_final boolean[])
RETURNS TABLE (id uuid, state {schema}.job_state, start_after timestamptz, dead_letter_id uuid)
LANGUAGE sql VOLATILE AS $$
    WITH input AS (
        SELECT d.id, d.lease, d.error, d.delay, COALESCE(d.final, false) AS final
        FROM unnest(p_ids, p_leases, p_errors, p_delays, p_final) AS d(id, lease, error, delay, final)
    ), target AS (
        SELECT j.id, j.retry_count < j.retry_limit AND NOT i.final AS can_retry, i.error,
               COALESCE(i.delay, {schema}.retry_delay(j.retry_delay, j.retry_backoff, j.retry_delay_max, j.retry_count)) AS delay
        FROM {schema}.job j JOIN input i ON j.id = i.id
        WHERE j.state::text = 'active' AND (i.lease IS NULL OR j.lease = i.lease)
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

CREATE OR REPLACE FUNCTION {schema}.fail_one_final(p_id uuid, p_lease uuid, p_error jsonb)
RETURNS TABLE (id uuid, state {schema}.job_state, start_after timestamptz, dead_letter_id uuid)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    v_ids uuid[];
    v_states {schema}.job_state[];
    v_starts timestamptz[];
    v_letters uuid[];
    v_message text;
BEGIN
    BEGIN
        SELECT array_agg(f.id), array_agg(f.state), array_agg(f.start_after), array_agg(f.dead_letter_id)
        INTO v_ids, v_states, v_starts, v_letters
        FROM {schema}.fail_jobs_set(ARRAY[p_id], ARRAY[p_lease], ARRAY[p_error],
                                    ARRAY[NULL::double precision], ARRAY[true]) f;
        RETURN QUERY SELECT * FROM unnest(v_ids, v_states, v_starts, v_letters);
        RETURN;
    EXCEPTION WHEN unique_violation OR check_violation OR data_exception THEN
        GET STACKED DIAGNOSTICS v_message = MESSAGE_TEXT;
    END;
    RETURN QUERY
    UPDATE {schema}.job j SET
        state = 'failed', completed_on = now(), waiting = false, lease = NULL, heartbeat_on = NULL,
        output = p_error || jsonb_build_object('dead_letter_error', v_message)
    WHERE j.id = p_id AND j.state::text = 'active' AND (p_lease IS NULL OR j.lease = p_lease)
    RETURNING j.id, j.state, j.start_after, NULL::uuid;
END
$$;

CREATE OR REPLACE FUNCTION {schema}.snooze_jobs(p_ids uuid[], p_leases uuid[], p_delays double precision[])
RETURNS TABLE (id uuid, state {schema}.job_state)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    v_ids uuid[];
    v_states {schema}.job_state[];
    v_index text;
    v_message text;
    v_error jsonb;
BEGIN
    FOR i IN 0 .. COALESCE(array_length(p_ids, 1), 0) LOOP
        -- pass 0 is the whole batch in one statement; passes 1..n (only after it failed)
        -- one row each
        BEGIN
            WITH upd AS (
                UPDATE {schema}.job j
                SET state = CASE WHEN j.retry_count > 0 THEN 'retry'::{schema}.job_state
                                 ELSE 'created'::{schema}.job_state END,
                    start_after = now() + d.delay * interval '1 second',
                    waiting = d.delay > 0,
                    started_on = NULL, heartbeat_on = NULL, lease = NULL
                FROM unnest(CASE WHEN i = 0 THEN p_ids ELSE p_ids[i:i] END,
                            CASE WHEN i = 0 THEN p_leases ELSE p_leases[i:i] END,
                            CASE WHEN i = 0 THEN p_delays ELSE p_delays[i:i] END) AS d(id, lease, delay)
                WHERE j.id = d.id AND j.lease = d.lease AND j.state::text = 'active'
                RETURNING j.id, j.state)
            SELECT array_agg(u.id), array_agg(u.state) INTO v_ids, v_states FROM upd u;
            RETURN QUERY SELECT * FROM unnest(v_ids, v_states);
            IF i = 0 THEN
                RETURN;
            END IF;
            CONTINUE;
        EXCEPTION WHEN unique_violation OR check_violation OR data_exception THEN
            GET STACKED DIAGNOSTICS v_index = CONSTRAINT_NAME, v_message = MESSAGE_TEXT;
        END;
        IF i = 0 THEN
            CONTINUE;
        END IF;
        IF v_index IN ('job_policy_stately', 'job_policy_short') THEN
            v_error := {schema}.conflict_error(p_ids[i], 'snooze', NULL);
        ELSE
            v_error := jsonb_build_object(
                'type', 'SettlementError',
                'message', 'the job could not be put back in its queue, so it failed for good: ' || v_message);
        END IF;
        RETURN QUERY SELECT f.id, f.state FROM {schema}.fail_one_final(p_ids[i], p_leases[i], v_error) f;
    END LOOP;
END
$$;
