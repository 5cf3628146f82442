SELECT id, email, name, role FROM {schema}.users
WHERE organization_id = %(organization_id)s AND role IN ('agent', 'admin')
ORDER BY name, id
