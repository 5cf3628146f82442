-- The delivery log: one row per idempotency key, the record that a mail was (or is being) sent.
-- status: 'sending' (claimed by job_id until claimed_until), 'delivered', 'failed'.
CREATE TABLE {schema}.delivery_log (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    idempotency_key text NOT NULL,
    recipient text NOT NULL,
    template text NOT NULL,
    locale text NOT NULL,
    provider text NOT NULL,
    status text NOT NULL,
    message_id text NOT NULL,
    provider_message_id text,
    error text,
    trace_id text,
    job_id uuid,
    attempt integer NOT NULL,
    claim uuid,
    claimed_until timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz,
    CONSTRAINT delivery_log_idempotency_key_key UNIQUE (idempotency_key),
    CONSTRAINT delivery_log_status_check CHECK (status IN ('sending', 'delivered', 'failed')),
    CONSTRAINT delivery_log_delivered_at_check CHECK ((status = 'delivered') = (delivered_at IS NOT NULL))
);

CREATE INDEX delivery_log_created_at_idx ON {schema}.delivery_log (created_at);
CREATE INDEX delivery_log_recipient_idx ON {schema}.delivery_log (recipient, created_at);
CREATE INDEX delivery_log_failed_idx ON {schema}.delivery_log (updated_at) WHERE status = 'failed';
