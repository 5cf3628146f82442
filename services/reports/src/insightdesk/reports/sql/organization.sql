SELECT id, name, time_zone, locale FROM {schema}.organizations WHERE id = %(id)s
