-- Cron schedules.

-- name: upsert_schedule
INSERT INTO {schema}.schedule (name, queue, cron, timezone, data, options, missed, grace, last_slot)
VALUES (%(name)s, %(queue)s, %(cron)s, %(timezone)s, %(data)s, %(options)s, %(missed)s, %(grace)s, now())
ON CONFLICT (name) DO UPDATE SET
    queue = EXCLUDED.queue, cron = EXCLUDED.cron, timezone = EXCLUDED.timezone, data = EXCLUDED.data,
    options = EXCLUDED.options, missed = EXCLUDED.missed, grace = EXCLUDED.grace, updated_on = now()
RETURNING name;

-- name: delete_schedule
DELETE FROM {schema}.schedule WHERE name = %(name)s RETURNING name;

-- name: list_schedules
SELECT name, queue, cron, timezone, data, options, missed, grace, last_slot, now() AS db_now
FROM {schema}.schedule ORDER BY name;

-- name: claim_slot
-- Advance a schedule to a slot. Only one scheduler can move last_slot forward past a given slot
-- (the row lock serialises them and the WHERE re-checks after the wait), so exactly one job is
-- created per (schedule, slot) however many schedulers tick at once.
UPDATE {schema}.schedule SET last_slot = %(slot)s
WHERE name = %(name)s AND (last_slot IS NULL OR last_slot < %(slot)s)
RETURNING name;
