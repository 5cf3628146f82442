INSERT INTO {schema}.sla_outcomes AS s (
    ticket_id, target, organization_id, due_at, warned_at, breached_at, met_at
) VALUES (
    %(ticket_id)s, %(target)s, %(organization_id)s, %(due_at)s,
    CASE WHEN %(outcome)s = 'warned' THEN %(occurred_at)s::timestamptz END,
    CASE WHEN %(outcome)s = 'breached' THEN %(occurred_at)s::timestamptz END,
    CASE WHEN %(outcome)s = 'met' THEN %(occurred_at)s::timestamptz END
)
ON CONFLICT (ticket_id, target) DO UPDATE
SET due_at = excluded.due_at,
    warned_at = coalesce(s.warned_at, excluded.warned_at),
    breached_at = coalesce(s.breached_at, excluded.breached_at),
    met_at = coalesce(s.met_at, excluded.met_at)
