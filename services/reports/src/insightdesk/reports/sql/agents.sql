-- Per agent (and admin): open tickets assigned now; replies and tickets solved in [start, end).
-- One grouped pass per measure (not a subquery per agent).
WITH staff AS (
    SELECT id, name FROM {schema}.users
    WHERE organization_id = %(organization_id)s AND role IN ('agent', 'admin')
), open_assigned AS (
    SELECT assignee_id AS id, count(*) AS n
    FROM {schema}.tickets
    WHERE organization_id = %(organization_id)s AND status IN ('open', 'pending')
      AND assignee_id IS NOT NULL
    GROUP BY assignee_id
), window_events AS (
    SELECT actor_id, ticket_id, kind, new_value
    FROM {schema}.ticket_events
    WHERE organization_id = %(organization_id)s
      AND occurred_at >= %(start)s AND occurred_at < %(end)s
      AND kind IN ('replied', 'status_changed') AND actor_id IS NOT NULL
), per_actor AS (
    SELECT actor_id AS id,
           count(*) FILTER (WHERE kind = 'replied') AS replies,
           count(DISTINCT ticket_id) FILTER (
               WHERE kind = 'status_changed' AND new_value = 'resolved') AS solved
    FROM window_events
    GROUP BY actor_id
)
SELECT s.id, s.name,
       coalesce(o.n, 0) AS open_assigned,
       coalesce(a.replies, 0) AS replies,
       coalesce(a.solved, 0) AS solved
FROM staff s
LEFT JOIN open_assigned o ON o.id = s.id
LEFT JOIN per_actor a ON a.id = s.id
ORDER BY s.name, s.id
