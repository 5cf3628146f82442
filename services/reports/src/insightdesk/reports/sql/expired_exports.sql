SELECT export_id, storage_key FROM {schema}.export_files
WHERE deleted_at IS NULL AND expires_at <= %(now)s
ORDER BY expires_at
LIMIT %(limit)s
