-- Export requests (POST /reports/exports): the reports service does the work; its
-- report.export_ready / report.export_failed events set the outcome here.
-- (0004: after the SLA branch's 0003.)
CREATE TABLE {schema}.exports (
    id uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES {schema}.organizations (id),
    requested_by uuid NOT NULL,
    format text NOT NULL CHECK (format IN ('csv', 'xlsx')),
    filters jsonb NOT NULL DEFAULT '{{}}',
    state text NOT NULL DEFAULT 'requested' CHECK (state IN ('requested', 'ready', 'failed')),
    rows bigint,
    download_url text,
    expires_at timestamptz,
    error text,
    requested_at timestamptz NOT NULL,
    finished_at timestamptz
);
CREATE INDEX exports_organization_idx ON {schema}.exports (organization_id, requested_at);
