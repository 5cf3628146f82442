INSERT INTO {schema}.processed_events (key) VALUES (%(key)s)
ON CONFLICT (key) DO NOTHING
RETURNING key
