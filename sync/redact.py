"""Secrets never reach a log line or an error message, whatever code produced the text.

The client secret and every token are registered when they become known; `redact` replaces
them in any text, and `RedactingFilter` applies it to every log record. This is the second
line of defence: the first is never putting a secret into a message at all.
"""

from __future__ import annotations

import logging
import threading

MASK = "********"
_secrets: set[str] = set()
_lock = threading.Lock()
MIN_LENGTH = 6  # shorter values would mask ordinary words


def register_secret(value: str) -> None:
    if value and len(value) >= MIN_LENGTH:
        with _lock:
            _secrets.add(value)


def redact(text: str) -> str:
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


class RedactingFilter(logging.Filter):
    """Masks registered secrets in the formatted message (and traceback) of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg, record.args = redact(message), None
        if record.exc_info:
            formatted = logging.Formatter().formatException(record.exc_info)
            record.exc_text, record.exc_info = redact(formatted), None
        return True
