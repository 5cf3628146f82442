INSERT INTO {schema}.organizations (id) VALUES (%(id)s)
ON CONFLICT (id) DO NOTHING
