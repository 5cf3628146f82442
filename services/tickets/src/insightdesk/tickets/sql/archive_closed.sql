-- Archive up to %(limit)s tickets closed before %(cutoff)s (oldest first; rows another run
-- holds are skipped).
UPDATE {schema}.tickets t
SET archived_at = %(now)s
WHERE t.id IN (
    SELECT id FROM {schema}.tickets
    WHERE status = 'closed' AND archived_at IS NULL AND closed_at < %(cutoff)s
    ORDER BY closed_at, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED)
RETURNING t.id
