-- Queue schema, version 5: one bad row can no longer block the settling or recovery of others.
--
-- Before, fail_jobs settled all its rows in one statement. A row it could not settle (a stately
-- job whose retry met the job already waiting to retry for its key: job_policy_stately; a
-- delay out of range) failed the whole statement, so the worker retried that settlement
-- forever and crash recovery, which settles every stale job of the schema in one call, stopped
-- re-queueing the dead workers' jobs of *every* queue. Snoozing or releasing a job of a short
-- or stately queue back to 'created' met job_policy_short / job_policy_stately the same way.
--
-- The rule now (README, "Queue policies"): a job whose retry, snooze or release would be a
-- second waiting job of its key in a short or stately queue yields to the job already waiting:
-- it is failed for good, without using its remaining attempts, with a PolicyConflict error
-- naming that job, and copied to its dead-letter queue like any final failure. A row that
-- cannot be settled as asked for another reason (a value out of range) is failed the same way
-- with a SettlementError. Nothing vanishes: every job ends in a state with a reason.
--
-- Cost: the set-based statement of version 3 still does the work (fail_jobs_set); only when it
-- raises does fail_jobs redo the batch one row at a time, each in its own subtransaction.

ALTER FUNCTION {schema}.fail_jobs(uuid[], uuid[], jsonb[], double precision[], boolean[])
    RENAME TO fail_jobs_set;

-- The error stored on a job that yields its key's slot: which job waits there, and what the
-- job's own error was (NULL for a snooze or release).
CREATE FUNCTION {schema}.conflict_error(p_id uuid, p_action text, p_error jsonb)
RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'type', 'PolicyConflict',
        'message', format('%s queue %L already has a job waiting (%s) for singleton key %L: '
                          'this %s yields to it (job %s)',
                          j.policy, j.name, t.state, COALESCE(j.singleton_key, ''), p_action,
                          COALESCE((SELECT o.id::text FROM {schema}.job o
                                    WHERE o.name = j.name AND o.id <> j.id AND o.state = t.state
                                      AND COALESCE(o.singleton_key, '') = COALESCE(j.singleton_key, '')
                                    LIMIT 1), 'unknown')),
        'error', p_error)
    FROM {schema}.job j
    CROSS JOIN LATERAL (SELECT CASE WHEN p_action = 'retry' OR j.retry_count > 0
                                    THEN 'retry'::{schema}.job_state
                                    ELSE 'created'::{schema}.job_state END AS state) t
    WHERE j.id = p_id
$$;

-- Fail one row for good with p_error whatever else goes wrong: through the normal path (so it
-- reaches its dead-letter queue), else (the dead-letter copy itself is refused) in place.
CREATE FUNCTION {schema}.fail_one_final(p_id uuid, p_lease uuid, p_error jsonb)
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
    WHERE j.id = p_id AND j.state = 'active' AND (p_lease IS NULL OR j.lease = p_lease)
    RETURNING j.id, j.state, j.start_after, NULL::uuid;
END
$$;

-- fail_jobs as before (same arguments, same result), but a row it cannot settle as asked is
-- failed with the reason instead of failing the others.
CREATE OR REPLACE FUNCTION {schema}.fail_jobs(p_ids uuid[], p_leases uuid[], p_errors jsonb[], p_delays double precision[], p_final boolean[])
RETURNS TABLE (id uuid, state {schema}.job_state, start_after timestamptz, dead_letter_id uuid)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    v_ids uuid[];
    v_states {schema}.job_state[];
    v_starts timestamptz[];
    v_letters uuid[];
    v_index text;
    v_message text;
    v_error jsonb;
BEGIN
    BEGIN
        -- collected first: rows of a statement that then fails must not be returned
        SELECT array_agg(f.id), array_agg(f.state), array_agg(f.start_after), array_agg(f.dead_letter_id)
        INTO v_ids, v_states, v_starts, v_letters
        FROM {schema}.fail_jobs_set(p_ids, p_leases, p_errors, p_delays, p_final) f;
        RETURN QUERY SELECT * FROM unnest(v_ids, v_states, v_starts, v_letters);
        RETURN;
    EXCEPTION WHEN unique_violation OR check_violation OR data_exception THEN
        NULL;  -- some row cannot be settled as asked: settle them one at a time
    END;
    FOR i IN 1 .. COALESCE(array_length(p_ids, 1), 0) LOOP
        BEGIN
            SELECT array_agg(f.id), array_agg(f.state), array_agg(f.start_after), array_agg(f.dead_letter_id)
            INTO v_ids, v_states, v_starts, v_letters
            FROM {schema}.fail_jobs_set(p_ids[i:i], p_leases[i:i], p_errors[i:i], p_delays[i:i], p_final[i:i]) f;
            RETURN QUERY SELECT * FROM unnest(v_ids, v_states, v_starts, v_letters);
            CONTINUE;
        EXCEPTION WHEN unique_violation OR check_violation OR data_exception THEN
            GET STACKED DIAGNOSTICS v_index = CONSTRAINT_NAME, v_message = MESSAGE_TEXT;
        END;
        IF v_index IN ('job_policy_stately', 'job_policy_short') THEN
            v_error := {schema}.conflict_error(p_ids[i], 'retry', p_errors[i]);
        ELSE
            v_error := jsonb_build_object(
                'type', 'SettlementError',
                'message', 'the job could not be settled as asked, so it failed for good: ' || v_message,
                'error', p_errors[i]);
        END IF;
        RETURN QUERY SELECT * FROM {schema}.fail_one_final(p_ids[i], p_leases[i], v_error);
    END LOOP;
END
$$;

-- Put active jobs back in their queue (handler snooze, release at shutdown) without using an
-- attempt; a job whose return its queue's policy refuses yields (see above). Returns the jobs
-- whose lease held, with the state they ended in.
CREATE FUNCTION {schema}.snooze_jobs(p_ids uuid[], p_leases uuid[], p_delays double precision[])
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
                WHERE j.id = d.id AND j.lease = d.lease AND j.state = 'active'
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
