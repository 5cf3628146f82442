-- Facts of the reports service, fed only by events (event-carried state). Every event is
-- recorded once in processed_events (its key: a digest of the event's content); an event seen
-- again changes nothing.
CREATE TABLE {schema}.processed_events (
    event_key text PRIMARY KEY,
    event_name text NOT NULL,
    occurred_at timestamptz NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX processed_events_processed_at_idx ON {schema}.processed_events (processed_at);

CREATE TABLE {schema}.organizations (
    id uuid PRIMARY KEY,
    name text NOT NULL DEFAULT '',
    time_zone text NOT NULL DEFAULT 'UTC',
    locale text NOT NULL DEFAULT 'en',
    -- the occurred_at of the organization event that last set the row (NULL: only seen on tickets)
    updated_at timestamptz
);

CREATE TABLE {schema}.users (
    id uuid PRIMARY KEY,
    organization_id uuid NOT NULL,
    email text NOT NULL,
    name text NOT NULL,
    role text NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX users_organization_idx ON {schema}.users (organization_id, role);

-- The latest snapshot of each ticket (an older event never overwrites a newer one).
CREATE TABLE {schema}.tickets (
    id uuid PRIMARY KEY,
    organization_id uuid NOT NULL,
    subject text NOT NULL,
    status text NOT NULL,
    priority text NOT NULL,
    customer_id uuid NOT NULL,
    customer_email text NOT NULL,
    customer_name text NOT NULL,
    assignee_id uuid,
    assignee_name text,
    created_at timestamptz NOT NULL,
    first_response_at timestamptz,
    resolved_at timestamptz,
    closed_at timestamptz,
    updated_at timestamptz NOT NULL
);
CREATE INDEX tickets_org_created_idx ON {schema}.tickets (organization_id, created_at, id);
CREATE INDEX tickets_org_first_response_idx ON {schema}.tickets (organization_id, first_response_at)
    WHERE first_response_at IS NOT NULL;
CREATE INDEX tickets_org_resolved_idx ON {schema}.tickets (organization_id, resolved_at)
    WHERE resolved_at IS NOT NULL;
CREATE INDEX tickets_org_backlog_idx ON {schema}.tickets (organization_id, status)
    WHERE status IN ('open', 'pending');

-- One row per lifecycle event: kind created | replied | status_changed | assigned |
-- priority_changed | closed; old/new values by their wire names.
CREATE TABLE {schema}.ticket_events (
    event_key text PRIMARY KEY REFERENCES {schema}.processed_events (event_key),
    ticket_id uuid NOT NULL,
    organization_id uuid NOT NULL,
    kind text NOT NULL,
    occurred_at timestamptz NOT NULL,
    actor_id uuid,
    actor_role text,
    old_value text,
    new_value text
);
CREATE INDEX ticket_events_org_time_idx ON {schema}.ticket_events (organization_id, occurred_at);
CREATE INDEX ticket_events_ticket_idx ON {schema}.ticket_events (ticket_id, occurred_at);

-- SLA outcomes per (ticket, target): when it is due, and whether/when it was warned, met or
-- breached. Fed by sla.* events; absent until the SLA service publishes them.
CREATE TABLE {schema}.sla_outcomes (
    ticket_id uuid NOT NULL,
    target text NOT NULL,
    organization_id uuid NOT NULL,
    due_at timestamptz NOT NULL,
    warned_at timestamptz,
    breached_at timestamptz,
    met_at timestamptz,
    PRIMARY KEY (ticket_id, target)
);
CREATE INDEX sla_outcomes_org_due_idx ON {schema}.sla_outcomes (organization_id, due_at);

-- A digest or weekly report sent for one (kind, organization, local period start): the row is
-- written in the transaction that enqueues the mails, so a second run sends nothing.
CREATE TABLE {schema}.report_runs (
    kind text NOT NULL,
    organization_id uuid NOT NULL,
    period_start date NOT NULL,
    recipients integer NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, organization_id, period_start)
);

-- Export files in storage; deleted (file and row marked) once their link has expired.
CREATE TABLE {schema}.export_files (
    export_id uuid PRIMARY KEY,
    organization_id uuid NOT NULL,
    storage_key text NOT NULL,
    format text NOT NULL,
    rows bigint NOT NULL,
    size_bytes bigint NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    deleted_at timestamptz
);
CREATE INDEX export_files_expiry_idx ON {schema}.export_files (expires_at) WHERE deleted_at IS NULL;
