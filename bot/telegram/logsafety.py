"""Keep the bot token out of the logs.

PTB builds request URLs as ``<base_url><token>/<method>``; httpx logs every request URL at INFO and
PTB logs its API URLs at DEBUG. So, while the adapter exists:

* the ``httpx``/``httpcore`` loggers are held at WARNING and ``telegram`` at INFO at most verbose;
* a filter on the root logger's handlers replaces the token with ``<token>`` in anything that still
  reaches them (defence in depth, e.g. a library message we didn't foresee).

:func:`protect` returns a function that undoes both.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

_FLOORS = {"httpx": logging.WARNING, "httpcore": logging.WARNING, "telegram": logging.INFO}


class RedactSecret(logging.Filter):
    """Replaces ``secret`` in a record's message (and drops the args it was formatted from)."""

    def __init__(self, secret: str, replacement: str = "<token>") -> None:
        super().__init__()
        self.secret = secret
        self.replacement = replacement

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secret:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is not ours to fix here
            return True
        if self.secret in message:
            record.msg = message.replace(self.secret, self.replacement)
            record.args = None
        if record.exc_text and self.secret in record.exc_text:
            record.exc_text = record.exc_text.replace(self.secret, self.replacement)
        return True


def protect(token: str) -> Callable[[], None]:
    """Apply the log levels and the redaction filter; returns the undo function."""
    previous: dict[str, int] = {}
    for name, floor in _FLOORS.items():
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < floor:
            previous[name] = logger.level
            logger.setLevel(floor)
    redact = RedactSecret(token)
    handlers = list(logging.getLogger().handlers)
    for handler in handlers:
        handler.addFilter(redact)

    def undo() -> None:
        for name, level in previous.items():
            logging.getLogger(name).setLevel(level)
        for handler in handlers:
            handler.removeFilter(redact)

    return undo
