SELECT ticket_id, at, kind, target, cycle, detail FROM {schema}.events
WHERE ticket_id = %(ticket_id)s ORDER BY id
