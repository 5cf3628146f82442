INSERT INTO {schema}.ticket_events (
    event_key, ticket_id, organization_id, kind, occurred_at, actor_id, actor_role, old_value,
    new_value
) VALUES (
    %(key)s, %(ticket_id)s, %(organization_id)s, %(kind)s, %(occurred_at)s, %(actor_id)s,
    %(actor_role)s, %(old_value)s, %(new_value)s
)
ON CONFLICT (event_key) DO NOTHING
