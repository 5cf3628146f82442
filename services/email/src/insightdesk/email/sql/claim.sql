-- Claim an idempotency key for one delivery attempt (see insightdesk.email.delivery).
-- Inserts the key, or takes over a row that is failed, held by the same job, or whose lease
-- ended. Returns the row as it is now, with claimed = whether this attempt holds it; no row
-- when a concurrent insert of the same key is not yet visible (the caller looks again later).
WITH claimed AS (
    INSERT INTO {schema}.delivery_log AS d (
        idempotency_key, recipient, template, locale, provider, status, message_id,
        trace_id, job_id, attempt, claim, claimed_until
    )
    VALUES (
        %(idempotency_key)s, %(recipient)s, %(template)s, %(locale)s, %(provider)s, 'sending',
        %(message_id)s, %(trace_id)s, %(job_id)s, %(attempt)s, %(claim)s,
        now() + make_interval(secs => %(lease_seconds)s)
    )
    ON CONFLICT (idempotency_key) DO UPDATE SET
        recipient = EXCLUDED.recipient,
        template = EXCLUDED.template,
        locale = EXCLUDED.locale,
        provider = EXCLUDED.provider,
        status = 'sending',
        message_id = EXCLUDED.message_id,
        trace_id = coalesce(EXCLUDED.trace_id, d.trace_id),
        job_id = EXCLUDED.job_id,
        attempt = EXCLUDED.attempt,
        claim = EXCLUDED.claim,
        claimed_until = EXCLUDED.claimed_until,
        updated_at = now()
    WHERE d.status = 'failed'
       OR (d.status = 'sending'
           AND (d.job_id IS NOT DISTINCT FROM EXCLUDED.job_id OR d.claimed_until <= now()))
    RETURNING d.status, d.provider_message_id, d.claimed_until, true AS claimed
)
SELECT status, provider_message_id,
       greatest(extract(epoch FROM claimed_until - now()), 0)::float8 AS retry_in, claimed
FROM claimed
UNION ALL
SELECT status, provider_message_id,
       greatest(extract(epoch FROM claimed_until - now()), 0)::float8 AS retry_in, false
FROM {schema}.delivery_log
WHERE idempotency_key = %(idempotency_key)s AND NOT EXISTS (SELECT FROM claimed)
