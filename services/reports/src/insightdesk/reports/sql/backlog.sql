-- Open and pending tickets as of now, by status and by age.
SELECT 'status' AS dimension, status AS label, count(*) AS count
FROM {schema}.tickets
WHERE organization_id = %(organization_id)s AND status IN ('open', 'pending')
GROUP BY status
UNION ALL
SELECT 'age', bucket, count(*)
FROM (
    SELECT CASE
        WHEN %(now)s - created_at < interval '1 day' THEN '< 1 day'
        WHEN %(now)s - created_at < interval '3 days' THEN '1-3 days'
        WHEN %(now)s - created_at < interval '7 days' THEN '3-7 days'
        ELSE '> 7 days'
    END AS bucket
    FROM {schema}.tickets
    WHERE organization_id = %(organization_id)s AND status IN ('open', 'pending')
) aged
GROUP BY bucket
