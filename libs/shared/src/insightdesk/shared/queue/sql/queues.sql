-- Queue definitions and event subscriptions.

-- name: upsert_queue
INSERT INTO {schema}.queue (name, policy, priority, retry_limit, retry_delay, retry_backoff,
                            retry_delay_max, expire_in, heartbeat, retention, delete_after, dead_letter)
VALUES (%(name)s, %(policy)s, %(priority)s, %(retry_limit)s, %(retry_delay)s, %(retry_backoff)s,
        %(retry_delay_max)s, %(expire_in)s, %(heartbeat)s, %(retention)s, %(delete_after)s, %(dead_letter)s)
ON CONFLICT (name) DO UPDATE SET
    policy = EXCLUDED.policy, priority = EXCLUDED.priority, retry_limit = EXCLUDED.retry_limit,
    retry_delay = EXCLUDED.retry_delay, retry_backoff = EXCLUDED.retry_backoff,
    retry_delay_max = EXCLUDED.retry_delay_max, expire_in = EXCLUDED.expire_in,
    heartbeat = EXCLUDED.heartbeat, retention = EXCLUDED.retention,
    delete_after = EXCLUDED.delete_after, dead_letter = EXCLUDED.dead_letter, updated_on = now()
RETURNING name;

-- name: ensure_queue
-- Create a queue with default options if it does not exist; leave an existing one as it is.
INSERT INTO {schema}.queue (name) VALUES (%(name)s) ON CONFLICT (name) DO NOTHING;

-- name: get_queue
SELECT name, policy::text AS policy, priority, retry_limit, retry_delay, retry_backoff,
       retry_delay_max, expire_in, heartbeat, retention, delete_after, dead_letter
FROM {schema}.queue WHERE name = %(name)s;

-- name: list_queues
SELECT name, policy::text AS policy, priority, retry_limit, retry_delay, retry_backoff,
       retry_delay_max, expire_in, heartbeat, retention, delete_after, dead_letter
FROM {schema}.queue ORDER BY name;

-- name: delete_queue
WITH jobs AS (DELETE FROM {schema}.job WHERE name = %(name)s)
DELETE FROM {schema}.queue WHERE name = %(name)s RETURNING name;

-- name: subscribe
INSERT INTO {schema}.subscription (event, name) VALUES (%(event)s, %(name)s)
ON CONFLICT DO NOTHING;

-- name: unsubscribe
DELETE FROM {schema}.subscription WHERE event = %(event)s AND name = %(name)s;

-- name: subscriptions
SELECT event, name FROM {schema}.subscription ORDER BY event, name;
