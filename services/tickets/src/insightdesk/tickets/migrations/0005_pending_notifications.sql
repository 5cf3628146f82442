-- Ticket updates waiting for their recipient's next mail (issue 12: notifications fold, never
-- drop). One row per update and recipient; the flush job of (ticket, recipient) turns all rows
-- into one mail and deletes them in the same transaction.

CREATE TABLE {schema}.pending_notifications (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id uuid NOT NULL,
    ticket_id       uuid NOT NULL REFERENCES {schema}.tickets (id) ON DELETE CASCADE,
    recipient_id    uuid NOT NULL REFERENCES {schema}.users (id) ON DELETE CASCADE,
    item            jsonb NOT NULL,
    created_at      timestamptz NOT NULL
);

CREATE INDEX pending_notifications_recipient
    ON {schema}.pending_notifications (ticket_id, recipient_id, id);
