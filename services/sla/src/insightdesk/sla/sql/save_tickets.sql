-- upsert many tickets in one statement (one array per column; ids unique within the call)
INSERT INTO {schema}.tickets (
    id, organization_id, customer_id, status, priority, created_at, snapshot_at,
    first_response_at, resolved_at, closed_at, last_staff_message_at, policy_id, sequence
)
SELECT * FROM unnest(
    %(id)s::uuid[], %(organization_id)s::uuid[], %(customer_id)s::uuid[], %(status)s::text[],
    %(priority)s::text[], %(created_at)s::timestamptz[], %(snapshot_at)s::timestamptz[],
    %(first_response_at)s::timestamptz[], %(resolved_at)s::timestamptz[],
    %(closed_at)s::timestamptz[], %(last_staff_message_at)s::timestamptz[],
    %(policy_id)s::uuid[], %(sequence)s::bigint[]
)
ON CONFLICT (id) DO UPDATE SET
    status = EXCLUDED.status,
    priority = EXCLUDED.priority,
    snapshot_at = EXCLUDED.snapshot_at,
    first_response_at = EXCLUDED.first_response_at,
    resolved_at = EXCLUDED.resolved_at,
    closed_at = EXCLUDED.closed_at,
    last_staff_message_at = EXCLUDED.last_staff_message_at,
    policy_id = EXCLUDED.policy_id,
    sequence = greatest({schema}.tickets.sequence, EXCLUDED.sequence)
