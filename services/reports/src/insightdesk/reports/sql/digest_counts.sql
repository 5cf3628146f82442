-- The headline figures of one organization for the window [start, end), backlog as of now.
WITH ev AS (
    SELECT ticket_id, kind, old_value, new_value
    FROM {schema}.ticket_events
    WHERE organization_id = %(organization_id)s
      AND occurred_at >= %(start)s AND occurred_at < %(end)s
      AND kind IN ('status_changed', 'closed')
), first_response AS (
    SELECT extract(epoch FROM first_response_at - created_at) / 60.0 AS minutes
    FROM {schema}.tickets
    WHERE organization_id = %(organization_id)s
      AND first_response_at >= %(start)s AND first_response_at < %(end)s
), resolution AS (
    SELECT extract(epoch FROM resolved_at - created_at) / 60.0 AS minutes
    FROM {schema}.tickets
    WHERE organization_id = %(organization_id)s
      AND resolved_at >= %(start)s AND resolved_at < %(end)s
)
SELECT
    (SELECT count(*) FROM {schema}.tickets
      WHERE organization_id = %(organization_id)s
        AND created_at >= %(start)s AND created_at < %(end)s) AS new,
    (SELECT count(DISTINCT ticket_id) FROM ev
      WHERE kind = 'status_changed' AND new_value = 'resolved') AS solved,
    (SELECT count(DISTINCT ticket_id) FROM ev
      WHERE kind = 'status_changed' AND old_value IN ('resolved', 'closed')
        AND new_value IN ('open', 'pending')) AS reopened,
    (SELECT count(DISTINCT ticket_id) FROM ev
      WHERE new_value = 'closed') AS closed,
    (SELECT count(*) FROM {schema}.tickets
      WHERE organization_id = %(organization_id)s AND status IN ('open', 'pending')
        AND assignee_id IS NULL) AS unassigned,
    (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY minutes) FROM first_response)
        AS first_response_median,
    (SELECT percentile_cont(0.9) WITHIN GROUP (ORDER BY minutes) FROM first_response)
        AS first_response_p90,
    (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY minutes) FROM resolution)
        AS resolution_median,
    (SELECT percentile_cont(0.9) WITHIN GROUP (ORDER BY minutes) FROM resolution)
        AS resolution_p90,
    (SELECT count(*) FROM {schema}.sla_outcomes
      WHERE organization_id = %(organization_id)s
        AND breached_at >= %(start)s AND breached_at < %(end)s) AS sla_breaches,
    (SELECT count(*) FROM {schema}.sla_outcomes s
       JOIN {schema}.tickets t ON t.id = s.ticket_id
      WHERE s.organization_id = %(organization_id)s
        AND s.due_at >= %(now)s AND s.due_at < %(now)s + interval '24 hours'
        AND s.breached_at IS NULL AND s.met_at IS NULL
        AND t.status IN ('open', 'pending')
        AND NOT (s.target LIKE 'first%%' AND t.first_response_at IS NOT NULL)) AS at_risk
