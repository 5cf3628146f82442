INSERT INTO {schema}.events (ticket_id, at, kind, target, cycle, detail)
VALUES (%(ticket_id)s, %(at)s, %(kind)s, %(target)s, %(cycle)s, %(detail)s)
