INSERT INTO {schema}.tickets AS t (
    id, organization_id, subject, status, priority, customer_id, customer_email, customer_name,
    assignee_id, assignee_name, created_at, first_response_at, resolved_at, closed_at, updated_at
) VALUES (
    %(id)s, %(organization_id)s, %(subject)s, %(status)s, %(priority)s, %(customer_id)s,
    %(customer_email)s, %(customer_name)s, %(assignee_id)s, %(assignee_name)s, %(created_at)s,
    %(first_response_at)s, %(resolved_at)s, %(closed_at)s, %(occurred_at)s
)
ON CONFLICT (id) DO UPDATE
SET subject = excluded.subject, status = excluded.status, priority = excluded.priority,
    assignee_id = excluded.assignee_id, assignee_name = excluded.assignee_name,
    first_response_at = coalesce(t.first_response_at, excluded.first_response_at),
    resolved_at = excluded.resolved_at, closed_at = excluded.closed_at,
    customer_email = excluded.customer_email, customer_name = excluded.customer_name,
    updated_at = excluded.updated_at
WHERE t.updated_at <= excluded.updated_at
