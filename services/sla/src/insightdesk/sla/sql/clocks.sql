SELECT * FROM {schema}.clocks WHERE ticket_id = ANY(%(ids)s) ORDER BY ticket_id, target, cycle
