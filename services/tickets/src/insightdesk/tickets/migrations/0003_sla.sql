-- SLA configuration owned by tickets (business calendars, SLA policies) and each ticket's SLA
-- targets as the SLA service last reported them (sla.clock_changed, event-carried state).

CREATE TABLE {schema}.business_calendars (
    id uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES {schema}.organizations (id),
    name text NOT NULL,
    config jsonb NOT NULL,
    version integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    UNIQUE (organization_id, id)
);

CREATE TABLE {schema}.sla_policies (
    id uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES {schema}.organizations (id),
    name text NOT NULL,
    position integer NOT NULL DEFAULT 0,
    is_default boolean NOT NULL DEFAULT false,
    calendar_id uuid,
    config jsonb NOT NULL,
    version integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    FOREIGN KEY (organization_id, calendar_id)
        REFERENCES {schema}.business_calendars (organization_id, id)
);
CREATE UNIQUE INDEX sla_policies_one_default ON {schema}.sla_policies (organization_id)
    WHERE is_default;
CREATE INDEX sla_policies_organization ON {schema}.sla_policies (organization_id, position);

CREATE TABLE {schema}.ticket_sla (
    ticket_id uuid PRIMARY KEY REFERENCES {schema}.tickets (id),
    organization_id uuid NOT NULL,
    sequence bigint NOT NULL,
    targets jsonb NOT NULL,
    breached boolean NOT NULL,
    at_risk boolean NOT NULL,
    as_of timestamptz NOT NULL
);
CREATE INDEX ticket_sla_breached ON {schema}.ticket_sla (organization_id) WHERE breached;
CREATE INDEX ticket_sla_at_risk ON {schema}.ticket_sla (organization_id) WHERE at_risk;
