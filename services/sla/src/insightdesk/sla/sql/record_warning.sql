INSERT INTO {schema}.warnings (ticket_id, target, cycle, deadline_version, warned_at)
VALUES (%(ticket_id)s, %(target)s, %(cycle)s, %(version)s, %(at)s)
ON CONFLICT DO NOTHING
RETURNING ticket_id
