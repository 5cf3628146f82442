"""The operations console: admin JSON API and live web dashboard over the queue engine.

:func:`create_console_app` builds the mountable ASGI app; :class:`ConsoleSettings` holds the
operator token and cookie settings.
"""

from insightdesk.shared.ops.app import create_console_app
from insightdesk.shared.ops.settings import ConsoleSettings

__all__ = ["ConsoleSettings", "create_console_app"]
