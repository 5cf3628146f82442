"""InsightDesk SLA service: business-time clocks per ticket and target, deadlines and warning
thresholds as queue jobs at the exact instant, breaches recorded once.

Run it with ``python -m insightdesk.sla``; ``python -m insightdesk.sla migrate`` prepares the
database (queue schema, the ``sla`` schema, the ``sla-check`` and ``sla-scan`` queues).
"""
