UPDATE {schema}.export_files SET deleted_at = %(now)s WHERE export_id = %(export_id)s
