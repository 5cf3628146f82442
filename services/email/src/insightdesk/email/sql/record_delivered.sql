-- Mark a key delivered (whoever holds it now: the mail did go out). No row when it already was.
UPDATE {schema}.delivery_log
SET status = 'delivered',
    provider = %(provider)s,
    provider_message_id = %(provider_message_id)s,
    error = NULL,
    claim = NULL,
    claimed_until = NULL,
    delivered_at = now(),
    updated_at = now()
WHERE idempotency_key = %(idempotency_key)s AND status <> 'delivered'
RETURNING id
