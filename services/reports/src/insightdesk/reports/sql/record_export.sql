INSERT INTO {schema}.export_files (
    export_id, organization_id, storage_key, format, rows, size_bytes, created_at, expires_at
) VALUES (
    %(export_id)s, %(organization_id)s, %(storage_key)s, %(format)s, %(rows)s, %(size_bytes)s,
    %(created_at)s, %(expires_at)s
)
ON CONFLICT (export_id) DO UPDATE
SET storage_key = excluded.storage_key, rows = excluded.rows, size_bytes = excluded.size_bytes,
    created_at = excluded.created_at, expires_at = excluded.expires_at, deleted_at = NULL
