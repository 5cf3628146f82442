-- New and solved tickets per local day of [start, end) in time zone %(time_zone)s.
WITH days AS (
    SELECT generate_series(
        (%(start)s::timestamptz AT TIME ZONE %(time_zone)s)::date,
        ((%(end)s::timestamptz - interval '1 microsecond') AT TIME ZONE %(time_zone)s)::date,
        interval '1 day')::date AS day
), created AS (
    SELECT (created_at AT TIME ZONE %(time_zone)s)::date AS day, count(*) AS n
    FROM {schema}.tickets
    WHERE organization_id = %(organization_id)s
      AND created_at >= %(start)s AND created_at < %(end)s
    GROUP BY 1
), solved AS (
    SELECT (occurred_at AT TIME ZONE %(time_zone)s)::date AS day, count(DISTINCT ticket_id) AS n
    FROM {schema}.ticket_events
    WHERE organization_id = %(organization_id)s AND kind = 'status_changed'
      AND new_value = 'resolved' AND occurred_at >= %(start)s AND occurred_at < %(end)s
    GROUP BY 1
)
SELECT days.day, coalesce(created.n, 0) AS new, coalesce(solved.n, 0) AS solved
FROM days LEFT JOIN created USING (day) LEFT JOIN solved USING (day)
ORDER BY days.day
