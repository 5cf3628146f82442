SELECT DISTINCT ticket_id FROM {schema}.clocks
WHERE state IN ('running', 'paused')
  AND (%(organization_id)s::uuid IS NULL OR organization_id = %(organization_id)s::uuid)
  AND (%(calendar_id)s::uuid IS NULL OR calendar_id = %(calendar_id)s::uuid)
ORDER BY ticket_id
