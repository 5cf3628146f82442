INSERT INTO {schema}.breaches (
    ticket_id, target, cycle, organization_id, due_at, deadline_version, breached_at
) VALUES (
    %(ticket_id)s, %(target)s, %(cycle)s, %(organization_id)s, %(due_at)s, %(version)s, %(at)s
)
ON CONFLICT (ticket_id, target, cycle) DO NOTHING
RETURNING ticket_id
