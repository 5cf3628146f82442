-- The tickets of an export, oldest first (read through a server-side cursor).
SELECT id, subject, status, priority, customer_name, customer_email, assignee_name,
       created_at, first_response_at, resolved_at, closed_at
FROM {schema}.tickets
WHERE organization_id = %(organization_id)s
  AND (%(created_from)s::timestamptz IS NULL OR created_at >= %(created_from)s::timestamptz)
  AND (%(created_to)s::timestamptz IS NULL OR created_at < %(created_to)s::timestamptz)
  AND (cardinality(%(statuses)s::text[]) = 0 OR status = ANY(%(statuses)s::text[]))
  AND (cardinality(%(priorities)s::text[]) = 0 OR priority = ANY(%(priorities)s::text[]))
  AND (%(assignee_id)s::uuid IS NULL OR assignee_id = %(assignee_id)s::uuid)
  AND (NOT %(unassigned_only)s OR assignee_id IS NULL)
ORDER BY created_at, id
