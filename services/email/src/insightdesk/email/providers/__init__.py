"""Delivery providers behind one interface (:class:`EmailProvider`): the file sink
(``file_sink``), SMTP (``smtp``) and Resend (``resend``); ``factory.make_provider`` picks one by
settings. Importing this package loads no provider, so the handler can name the interface
without pulling in HTTP or SMTP clients."""

from insightdesk.email.providers.base import EmailProvider

__all__ = ["EmailProvider"]
