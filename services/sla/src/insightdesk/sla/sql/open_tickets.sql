-- tickets whose clocks a change may touch: the open tickets of an organization (a new or
-- changed policy may start clocks a ticket has none of yet), or the tickets with an open
-- clock on a calendar
SELECT t.id AS ticket_id FROM {schema}.tickets t
WHERE %(organization_id)s::uuid IS NOT NULL
  AND t.organization_id = %(organization_id)s::uuid AND t.closed_at IS NULL
UNION
SELECT DISTINCT c.ticket_id FROM {schema}.clocks c
WHERE %(calendar_id)s::uuid IS NOT NULL
  AND c.calendar_id = %(calendar_id)s::uuid AND c.state IN ('running', 'paused')
ORDER BY ticket_id
