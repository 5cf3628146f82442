-- Per agent (and admin): open tickets assigned now; replies and tickets solved in [start, end).
SELECT u.id, u.name,
    (SELECT count(*) FROM {schema}.tickets t
      WHERE t.organization_id = %(organization_id)s AND t.assignee_id = u.id
        AND t.status IN ('open', 'pending')) AS open_assigned,
    (SELECT count(*) FROM {schema}.ticket_events e
      WHERE e.organization_id = %(organization_id)s AND e.actor_id = u.id AND e.kind = 'replied'
        AND e.occurred_at >= %(start)s AND e.occurred_at < %(end)s) AS replies,
    (SELECT count(DISTINCT e.ticket_id) FROM {schema}.ticket_events e
      WHERE e.organization_id = %(organization_id)s AND e.actor_id = u.id
        AND e.kind = 'status_changed' AND e.new_value = 'resolved'
        AND e.occurred_at >= %(start)s AND e.occurred_at < %(end)s) AS solved
FROM {schema}.users u
WHERE u.organization_id = %(organization_id)s AND u.role IN ('agent', 'admin')
ORDER BY u.name, u.id
