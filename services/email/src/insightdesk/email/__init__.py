"""InsightDesk email service: renders ``SendEmail`` commands with jinja2 templates and delivers
them through one provider (file sink, SMTP or Resend), at most once per idempotency key.

Run it with ``python -m insightdesk.email``; ``python -m insightdesk.email migrate`` prepares the
database (queue schema, the ``email`` schema, the ``email`` and ``email-dead`` queues).
"""
