-- Give a key up after a failed attempt that will be retried: the lease ends now.
UPDATE {schema}.delivery_log
SET error = %(error)s,
    claimed_until = now(),
    updated_at = now()
WHERE idempotency_key = %(idempotency_key)s AND claim = %(claim)s AND status = 'sending'
