INSERT INTO {schema}.organizations AS o (id, name, time_zone, locale, updated_at)
VALUES (%(id)s, coalesce(%(name)s, ''), coalesce(%(time_zone)s, 'UTC'), coalesce(%(locale)s, 'en'),
        %(occurred_at)s)
ON CONFLICT (id) DO UPDATE
SET name = coalesce(%(name)s, o.name),
    time_zone = coalesce(%(time_zone)s, o.time_zone),
    locale = coalesce(%(locale)s, o.locale),
    updated_at = excluded.updated_at
WHERE o.updated_at IS NULL OR o.updated_at <= excluded.updated_at
