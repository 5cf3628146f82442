"""InsightDesk tickets service: the help desk's system of record.

Organizations, users (admin/agent/customer), tickets, their messages and participants live in the
``tickets`` schema; the HTTP API (FastAPI, docs at ``/docs``) changes them and, in the same
transaction, publishes the domain event of each change and the ``SendEmail`` commands the
notification policy asks for (the transactional outbox).

Run it with ``python -m insightdesk.tickets``; ``python -m insightdesk.tickets migrate`` prepares
the database (queue schema, the ``tickets`` schema, the ``email`` queue it sends to).
"""
