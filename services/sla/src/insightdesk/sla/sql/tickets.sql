SELECT * FROM {schema}.tickets WHERE id = ANY(%(ids)s) ORDER BY id FOR UPDATE
