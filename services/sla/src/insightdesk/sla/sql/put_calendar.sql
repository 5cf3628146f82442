INSERT INTO {schema}.calendars AS c (id, organization_id, version, config)
VALUES (%(id)s, %(organization_id)s, %(version)s, %(config)s)
ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, config = EXCLUDED.config,
    updated_at = now()
WHERE c.version < EXCLUDED.version
RETURNING id
