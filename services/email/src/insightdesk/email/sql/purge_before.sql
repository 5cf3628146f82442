-- Delete up to %(limit)s finished delivery-log rows last changed before %(cutoff)s (the
-- cleanup job; rows still being sent are kept).
DELETE FROM {schema}.delivery_log
WHERE id IN (
    SELECT id FROM {schema}.delivery_log
    WHERE status IN ('delivered', 'failed') AND updated_at < %(cutoff)s
    ORDER BY updated_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED)
