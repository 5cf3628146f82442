INSERT INTO {schema}.tickets (
    id, organization_id, customer_id, status, priority, created_at, snapshot_at,
    first_response_at, resolved_at, closed_at, last_staff_message_at, policy_id, sequence
) VALUES (
    %(id)s, %(organization_id)s, %(customer_id)s, %(status)s, %(priority)s, %(created_at)s,
    %(snapshot_at)s, %(first_response_at)s, %(resolved_at)s, %(closed_at)s,
    %(last_staff_message_at)s, %(policy_id)s, %(sequence)s
)
ON CONFLICT (id) DO NOTHING
