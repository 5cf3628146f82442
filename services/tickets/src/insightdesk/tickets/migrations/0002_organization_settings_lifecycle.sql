-- Organization settings (time zone, locale, auto-close) and the ticket lifecycle jobs.

ALTER TABLE {schema}.organizations
    ADD COLUMN time_zone text NOT NULL DEFAULT 'UTC' CHECK (length(time_zone) BETWEEN 1 AND 64),
    ADD COLUMN locale text NOT NULL DEFAULT 'en' CHECK (locale ~ '^[a-z]{{2,3}}(-[A-Z]{{2}})?$'),
    ADD COLUMN auto_close_after_days integer NOT NULL DEFAULT 7
        CHECK (auto_close_after_days BETWEEN 0 AND 3650),
    ADD COLUMN updated_at timestamptz;

-- Archived tickets (closed long ago) leave the default listing but stay readable by id.
ALTER TABLE {schema}.tickets
    ADD COLUMN archived_at timestamptz,
    ADD CONSTRAINT tickets_archived_is_closed CHECK (archived_at IS NULL OR status = 'closed');

-- auto-close walks resolved tickets in (resolved_at, id) order: a keyset over this index
DROP INDEX {schema}.tickets_resolved;
CREATE INDEX tickets_resolved ON {schema}.tickets (resolved_at, id) WHERE status = 'resolved';
-- cleanup walks closed, not yet archived tickets by closing time
CREATE INDEX tickets_closed_unarchived ON {schema}.tickets (closed_at, id)
    WHERE status = 'closed' AND archived_at IS NULL;
