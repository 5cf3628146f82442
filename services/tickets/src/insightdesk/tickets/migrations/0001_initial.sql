-- The tickets service's own schema. Every row carries its organization, and the foreign keys
-- include it (composite keys), so a ticket, message or participant can never point at a user or
-- ticket of another organization, whatever the application code does.

CREATE TABLE {schema}.organizations (
    id          uuid PRIMARY KEY,
    name        text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL
);

CREATE TABLE {schema}.users (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES {schema}.organizations (id) ON DELETE CASCADE,
    -- unique per organization: one person may be a customer of several help desks
    email           text NOT NULL CHECK (email = lower(email) AND length(email) <= 254),
    name            text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    role            text NOT NULL CHECK (role IN ('admin', 'agent', 'customer')),
    -- SHA-256 (hex) of the API token; the token itself is shown once and never stored
    api_token_hash  text NOT NULL CHECK (api_token_hash ~ '^[0-9a-f]{{64}}$'),
    created_at      timestamptz NOT NULL,
    CONSTRAINT users_email_per_org UNIQUE (organization_id, email),
    CONSTRAINT users_token UNIQUE (api_token_hash),
    CONSTRAINT users_org_id UNIQUE (organization_id, id)
);

CREATE TABLE {schema}.tickets (
    id                uuid PRIMARY KEY,
    organization_id   uuid NOT NULL REFERENCES {schema}.organizations (id) ON DELETE CASCADE,
    subject           text NOT NULL CHECK (length(btrim(subject)) BETWEEN 1 AND 250),
    status            text NOT NULL DEFAULT 'open'
                      CHECK (status IN ('open', 'pending', 'resolved', 'closed')),
    priority          text NOT NULL DEFAULT 'normal'
                      CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    customer_id       uuid NOT NULL,
    assignee_id       uuid,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    first_response_at timestamptz,
    resolved_at       timestamptz,
    closed_at         timestamptz,
    CONSTRAINT tickets_org_id UNIQUE (organization_id, id),
    CONSTRAINT tickets_customer FOREIGN KEY (organization_id, customer_id)
        REFERENCES {schema}.users (organization_id, id),
    CONSTRAINT tickets_assignee FOREIGN KEY (organization_id, assignee_id)
        REFERENCES {schema}.users (organization_id, id),
    CONSTRAINT tickets_resolved_has_time CHECK (status <> 'resolved' OR resolved_at IS NOT NULL),
    CONSTRAINT tickets_closed_has_time CHECK (status <> 'closed' OR closed_at IS NOT NULL)
);

CREATE INDEX tickets_by_org ON {schema}.tickets (organization_id, created_at DESC, id DESC);
CREATE INDEX tickets_by_customer
    ON {schema}.tickets (organization_id, customer_id, created_at DESC, id DESC);
CREATE INDEX tickets_by_assignee
    ON {schema}.tickets (organization_id, assignee_id) WHERE assignee_id IS NOT NULL;
-- the auto-close sweep: resolved tickets by the time they were resolved
CREATE INDEX tickets_resolved ON {schema}.tickets (resolved_at) WHERE status = 'resolved';

CREATE TABLE {schema}.messages (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL,
    ticket_id       uuid NOT NULL,
    author_id       uuid NOT NULL,
    body            text NOT NULL CHECK (length(btrim(body)) > 0),
    created_at      timestamptz NOT NULL,
    CONSTRAINT messages_ticket FOREIGN KEY (organization_id, ticket_id)
        REFERENCES {schema}.tickets (organization_id, id) ON DELETE CASCADE,
    CONSTRAINT messages_author FOREIGN KEY (organization_id, author_id)
        REFERENCES {schema}.users (organization_id, id)
);

CREATE INDEX messages_by_ticket ON {schema}.messages (ticket_id, created_at, id);
CREATE INDEX messages_by_author ON {schema}.messages (ticket_id, author_id);

-- Who is notified about a ticket: its customer, its assignee and every author of a message.
CREATE TABLE {schema}.participants (
    ticket_id       uuid NOT NULL,
    user_id         uuid NOT NULL,
    organization_id uuid NOT NULL,
    added_at        timestamptz NOT NULL,
    PRIMARY KEY (ticket_id, user_id),
    CONSTRAINT participants_ticket FOREIGN KEY (organization_id, ticket_id)
        REFERENCES {schema}.tickets (organization_id, id) ON DELETE CASCADE,
    CONSTRAINT participants_user FOREIGN KEY (organization_id, user_id)
        REFERENCES {schema}.users (organization_id, id) ON DELETE CASCADE
);

CREATE INDEX participants_by_user ON {schema}.participants (user_id);
