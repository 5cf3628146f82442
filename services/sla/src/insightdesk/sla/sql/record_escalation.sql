INSERT INTO {schema}.escalations (ticket_id, target, cycle, deadline_version, level, escalated_at)
VALUES (%(ticket_id)s, %(target)s, %(cycle)s, %(version)s, %(level)s, %(at)s)
ON CONFLICT DO NOTHING
RETURNING ticket_id
