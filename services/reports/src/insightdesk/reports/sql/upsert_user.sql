INSERT INTO {schema}.users AS u (id, organization_id, email, name, role, updated_at)
VALUES (%(id)s, %(organization_id)s, %(email)s, %(name)s, %(role)s, %(occurred_at)s)
ON CONFLICT (id) DO UPDATE
SET organization_id = excluded.organization_id, email = excluded.email, name = excluded.name,
    role = excluded.role, updated_at = excluded.updated_at
WHERE u.updated_at <= excluded.updated_at
