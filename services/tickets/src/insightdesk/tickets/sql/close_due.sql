-- Close up to %(limit)s resolved tickets whose organization's auto_close_after_days have passed,
-- oldest resolution first, after the keyset cursor (%(after_at)s, %(after_id)s). Rows another
-- run holds are skipped; the UPDATE re-checks the status under the row lock, so a ticket
-- reopened meanwhile stays open. Returns what the ticket.closed snapshots need.
WITH due AS (
    SELECT t.id
    FROM {schema}.tickets t
    JOIN {schema}.organizations o ON o.id = t.organization_id
    WHERE t.status = 'resolved'
      AND (t.resolved_at, t.id) > (%(after_at)s, %(after_id)s)
      AND t.resolved_at <= %(now)s - interval '1 day'
      AND o.auto_close_after_days > 0
      AND t.resolved_at <= %(now)s - make_interval(days => o.auto_close_after_days)
    ORDER BY t.resolved_at, t.id
    LIMIT %(limit)s
    FOR UPDATE OF t SKIP LOCKED
), closed AS (
    UPDATE {schema}.tickets t
    SET status = 'closed', closed_at = %(now)s, updated_at = %(now)s
    FROM due
    WHERE t.id = due.id AND t.status = 'resolved'
    RETURNING t.id, t.organization_id, t.subject, t.priority, t.customer_id, t.assignee_id,
              t.created_at, t.first_response_at, t.resolved_at, t.closed_at
)
SELECT c.id, c.organization_id, c.subject, c.priority, c.created_at, c.first_response_at,
       c.resolved_at, c.closed_at, o.locale,
       cu.id AS customer_id, cu.email AS customer_email, cu.name AS customer_name,
       cu.role AS customer_role,
       a.id AS assignee_id, a.email AS assignee_email, a.name AS assignee_name,
       a.role AS assignee_role
FROM closed c
JOIN {schema}.organizations o ON o.id = c.organization_id
JOIN {schema}.users cu ON cu.id = c.customer_id
LEFT JOIN {schema}.users a ON a.id = c.assignee_id
ORDER BY c.resolved_at, c.id
