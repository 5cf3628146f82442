-- SLA outcomes of the targets due in [start, end): met unless breached.
SELECT target,
       count(*) FILTER (WHERE breached_at IS NULL) AS met,
       count(*) FILTER (WHERE breached_at IS NOT NULL) AS breached
FROM {schema}.sla_outcomes
WHERE organization_id = %(organization_id)s AND due_at >= %(start)s AND due_at < %(end)s
  AND (breached_at IS NOT NULL OR met_at IS NOT NULL OR due_at < %(now)s)
GROUP BY target
ORDER BY target
