INSERT INTO {schema}.events (ticket_id, at, kind, target, cycle, detail)
SELECT e.ticket_id, e.at, e.kind, e.target, e.cycle, e.detail FROM unnest(
    %(ticket_id)s::uuid[], %(at)s::timestamptz[], %(kind)s::text[], %(target)s::text[],
    %(cycle)s::int[], %(detail)s::jsonb[]
) WITH ORDINALITY AS e(ticket_id, at, kind, target, cycle, detail, n)
ORDER BY n
