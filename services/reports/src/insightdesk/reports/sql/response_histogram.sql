-- First responses given in [start, end), by how long the customer waited.
SELECT bucket, count(*) AS count
FROM (
    SELECT width_bucket(
        extract(epoch FROM first_response_at - created_at) / 60.0,
        ARRAY[15, 60, 240, 1440]::double precision[]) AS bucket
    FROM {schema}.tickets
    WHERE organization_id = %(organization_id)s
      AND first_response_at >= %(start)s AND first_response_at < %(end)s
) b
GROUP BY bucket
ORDER BY bucket
