-- what the safety-net scan settles: deadlines passed without a breach, warnings passed
-- without a warning, of running clocks
(SELECT ticket_id, target, cycle, version, 'deadline' AS kind, due_at AS run_at
   FROM {schema}.clocks
  WHERE state = 'running' AND NOT breached AND due_at <= %(now)s
  ORDER BY due_at LIMIT %(limit)s)
UNION ALL
(SELECT ticket_id, target, cycle, version, 'warning' AS kind, warn_at AS run_at
   FROM {schema}.clocks
  WHERE state = 'running' AND NOT warned AND NOT breached AND warn_at <= %(now)s
    AND (due_at IS NULL OR due_at > %(now)s)
  ORDER BY warn_at LIMIT %(limit)s)
ORDER BY run_at
LIMIT %(limit)s
