-- The SLA service's schema: its copies of tickets, policies and calendars (fed by events),
-- the clocks, the once-only records (breaches, warnings, escalations) and the SLA event log.

-- events already handled (a duplicate delivery finds its key here)
CREATE TABLE {schema}.processed_events (
    key text PRIMARY KEY,
    processed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX processed_events_at_idx ON {schema}.processed_events (processed_at);

-- copies of the tickets service's configuration; config NULL = deleted (a tombstone)
CREATE TABLE {schema}.policies (
    id uuid PRIMARY KEY,
    organization_id uuid NOT NULL,
    version integer NOT NULL,
    config jsonb,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX policies_organization_idx ON {schema}.policies (organization_id);

CREATE TABLE {schema}.calendars (
    id uuid PRIMARY KEY,
    organization_id uuid NOT NULL,
    version integer NOT NULL,
    config jsonb,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- what the service knows of each ticket (merged from event snapshots)
CREATE TABLE {schema}.tickets (
    id uuid PRIMARY KEY,
    organization_id uuid NOT NULL,
    customer_id uuid NOT NULL,
    status text NOT NULL,
    priority text NOT NULL,
    created_at timestamptz NOT NULL,
    snapshot_at timestamptz NOT NULL,
    first_response_at timestamptz,
    resolved_at timestamptz,
    closed_at timestamptz,
    last_staff_message_at timestamptz,
    policy_id uuid,
    sequence bigint NOT NULL DEFAULT 0
);
CREATE INDEX tickets_open_organization_idx ON {schema}.tickets (organization_id)
    WHERE closed_at IS NULL;

-- one clock per ticket, target and cycle; pauses: a JSON array of (paused_at, resumed_at)
CREATE TABLE {schema}.clocks (
    ticket_id uuid NOT NULL REFERENCES {schema}.tickets (id),
    target text NOT NULL,
    cycle integer NOT NULL,
    organization_id uuid NOT NULL,
    policy_id uuid,
    calendar_id uuid,
    mode text NOT NULL,
    state text NOT NULL,
    started_at timestamptz NOT NULL,
    budget interval NOT NULL,
    used interval NOT NULL,
    since timestamptz NOT NULL,
    due_at timestamptz,
    warn_at timestamptz,
    version integer NOT NULL,
    finished_at timestamptz,
    warned boolean NOT NULL DEFAULT false,
    breached boolean NOT NULL DEFAULT false,
    pauses jsonb NOT NULL DEFAULT '[]',
    PRIMARY KEY (ticket_id, target, cycle),
    CONSTRAINT clocks_target_check CHECK (
        target IN ('first_response', 'next_response', 'periodic_update', 'resolution')),
    CONSTRAINT clocks_state_check CHECK (state IN ('running', 'paused', 'fulfilled', 'stopped')),
    CONSTRAINT clocks_mode_check CHECK (mode IN ('business', 'calendar'))
);
CREATE INDEX clocks_due_idx ON {schema}.clocks (due_at) WHERE state = 'running' AND NOT breached;
CREATE INDEX clocks_warn_idx ON {schema}.clocks (warn_at)
    WHERE state = 'running' AND NOT warned AND NOT breached;
CREATE INDEX clocks_open_calendar_idx ON {schema}.clocks (calendar_id)
    WHERE state IN ('running', 'paused');
CREATE INDEX clocks_open_organization_idx ON {schema}.clocks (organization_id)
    WHERE state IN ('running', 'paused');

-- a breach per ticket, target and cycle: recorded once by this key, never checked-then-inserted
CREATE TABLE {schema}.breaches (
    ticket_id uuid NOT NULL,
    target text NOT NULL,
    cycle integer NOT NULL,
    organization_id uuid NOT NULL,
    due_at timestamptz NOT NULL,
    deadline_version integer NOT NULL,
    breached_at timestamptz NOT NULL,
    PRIMARY KEY (ticket_id, target, cycle)
);

CREATE TABLE {schema}.warnings (
    ticket_id uuid NOT NULL,
    target text NOT NULL,
    cycle integer NOT NULL,
    deadline_version integer NOT NULL,
    warned_at timestamptz NOT NULL,
    PRIMARY KEY (ticket_id, target, cycle, deadline_version)
);

CREATE TABLE {schema}.escalations (
    ticket_id uuid NOT NULL,
    target text NOT NULL,
    cycle integer NOT NULL,
    deadline_version integer NOT NULL,
    level integer NOT NULL,
    escalated_at timestamptz NOT NULL,
    PRIMARY KEY (ticket_id, target, cycle, deadline_version, level)
);

-- the append-only SLA log of each ticket
CREATE TABLE {schema}.events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ticket_id uuid NOT NULL,
    at timestamptz NOT NULL,
    kind text NOT NULL,
    target text,
    cycle integer,
    detail jsonb,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_ticket_idx ON {schema}.events (ticket_id, id);

CREATE FUNCTION {schema}.events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the SLA event log is append-only';
END $$;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON {schema}.events
    FOR EACH ROW EXECUTE FUNCTION {schema}.events_append_only();
