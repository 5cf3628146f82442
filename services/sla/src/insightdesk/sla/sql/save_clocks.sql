-- upsert many clocks in one statement (one array per column; keys unique within the call)
INSERT INTO {schema}.clocks (
    ticket_id, target, cycle, organization_id, policy_id, calendar_id, mode, state, started_at,
    budget, used, since, due_at, warn_at, version, finished_at, warned, breached, pauses
)
SELECT * FROM unnest(
    %(ticket_id)s::uuid[], %(target)s::text[], %(cycle)s::int[], %(organization_id)s::uuid[],
    %(policy_id)s::uuid[], %(calendar_id)s::uuid[], %(mode)s::text[], %(state)s::text[],
    %(started_at)s::timestamptz[], %(budget)s::interval[], %(used)s::interval[],
    %(since)s::timestamptz[], %(due_at)s::timestamptz[], %(warn_at)s::timestamptz[],
    %(version)s::int[], %(finished_at)s::timestamptz[], %(warned)s::bool[],
    %(breached)s::bool[], %(pauses)s::jsonb[]
)
ON CONFLICT (ticket_id, target, cycle) DO UPDATE SET
    policy_id = EXCLUDED.policy_id,
    calendar_id = EXCLUDED.calendar_id,
    mode = EXCLUDED.mode,
    state = EXCLUDED.state,
    budget = EXCLUDED.budget,
    used = EXCLUDED.used,
    since = EXCLUDED.since,
    due_at = EXCLUDED.due_at,
    warn_at = EXCLUDED.warn_at,
    version = EXCLUDED.version,
    finished_at = EXCLUDED.finished_at,
    warned = EXCLUDED.warned,
    breached = EXCLUDED.breached,
    pauses = EXCLUDED.pauses
