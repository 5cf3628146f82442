INSERT INTO {schema}.clocks (
    ticket_id, target, cycle, organization_id, policy_id, calendar_id, mode, state, started_at,
    budget, used, since, due_at, warn_at, version, finished_at, warned, breached, pauses
) VALUES (
    %(ticket_id)s, %(target)s, %(cycle)s, %(organization_id)s, %(policy_id)s, %(calendar_id)s,
    %(mode)s, %(state)s, %(started_at)s, %(budget)s, %(used)s, %(since)s, %(due_at)s,
    %(warn_at)s, %(version)s, %(finished_at)s, %(warned)s, %(breached)s, %(pauses)s
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
