-- Mark a key failed, if this attempt's claim still holds it.
UPDATE {schema}.delivery_log
SET status = 'failed',
    error = %(error)s,
    claim = NULL,
    claimed_until = NULL,
    updated_at = now()
WHERE idempotency_key = %(idempotency_key)s AND claim = %(claim)s AND status = 'sending'
RETURNING id
