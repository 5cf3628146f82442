SELECT id, organization_id, version, config FROM {schema}.policies
WHERE organization_id = %(organization_id)s ORDER BY id
