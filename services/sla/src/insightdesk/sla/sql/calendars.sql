SELECT id, organization_id, version, config FROM {schema}.calendars WHERE id = ANY(%(ids)s)
