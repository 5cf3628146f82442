INSERT INTO {schema}.policies AS p (id, organization_id, version, config)
VALUES (%(id)s, %(organization_id)s, %(version)s, %(config)s)
ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, config = EXCLUDED.config,
    updated_at = now()
WHERE p.version < EXCLUDED.version
RETURNING id
