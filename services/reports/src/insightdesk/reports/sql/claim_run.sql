INSERT INTO {schema}.report_runs (kind, organization_id, period_start, recipients)
VALUES (%(kind)s, %(organization_id)s, %(period_start)s, %(recipients)s)
ON CONFLICT (kind, organization_id, period_start) DO NOTHING
RETURNING kind
