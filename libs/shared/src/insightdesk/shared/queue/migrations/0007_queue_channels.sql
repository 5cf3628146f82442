-- Queue schema, version 7: one NOTIFY channel per queue.
--
-- Until version 6 every insert announced its queue on the schema's single channel, so a send to
-- one queue woke the consumer loop of every process listening on the schema, which then found
-- the queue was not one of its own. Now each queue has a channel of its own, and a consumer
-- LISTENs only on the queues it serves: a NOTIFY wakes only the loops that serve that queue.
-- The payload is still the queue name. A channel name is at most 63 bytes (PostgreSQL's limit),
-- so a long queue name is replaced by the first 16 hex digits of its md5 in the channel name
-- (the Python side, statements.queue_channel, computes the same name).
--
-- Processes of an earlier version still LISTEN on the schema channel: until they are replaced,
-- they pick up new jobs at their poll interval instead of at once.

CREATE FUNCTION {schema}.queue_channel(name text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN octet_length({channel} || '.' || name) <= 63 THEN {channel} || '.' || name
                ELSE {channel} || '.' || left(md5(name), 16) END
$$;

CREATE OR REPLACE FUNCTION {schema}.notify_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify({schema}.queue_channel(n.name), n.name)
    FROM (SELECT DISTINCT name FROM new_jobs) n;
    RETURN NULL;
END
$$;
