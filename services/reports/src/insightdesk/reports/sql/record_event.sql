INSERT INTO {schema}.processed_events (event_key, event_name, occurred_at)
VALUES (%(key)s, %(name)s, %(occurred_at)s)
ON CONFLICT (event_key) DO NOTHING
RETURNING event_key
