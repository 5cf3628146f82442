SELECT id, name, time_zone, locale FROM {schema}.organizations ORDER BY id
