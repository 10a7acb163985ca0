"""Text that is safe to write anywhere, and safe readings of a raised exception.

Everything that formats a foreign value -- an exception raised by a provider or a tool,
a name a model chose -- for an event, a reason, a log line or an SQLite column goes
through here, because such a value's own code may misbehave: ``__str__`` and
``__repr__`` may raise, a ``retryable`` property may raise, and a ``str`` may hold lone
surrogates (``'\\ud800'``), which UTF-8 and therefore SQLite text columns and pydantic's
JSON cannot hold.

Contract: no function here ever raises, whatever the value does; every string returned
is encodable as UTF-8.
"""

from __future__ import annotations

MESSAGE_LIMIT = 2000
"""Characters of an exception's message kept in events and reasons (a traceback can be
megabytes; the log keeps the whole of it)."""


def printable(text: str) -> str:
    """``text`` with every lone surrogate written as a ``\\udXXX`` escape (other text
    unchanged), so it can be encoded as UTF-8. Deterministic."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    except Exception:  # a str subclass with a hostile encode()
        return "<text that cannot be encoded>"


def exception_type(exc: BaseException) -> str:
    """The exception's class name (``'ValueError'``), or a placeholder."""
    try:
        return printable(str(type(exc).__name__))
    except BaseException:  # formatting must never take the caller down
        return "<unnamed exception>"


def exception_message(exc: BaseException, limit: int = MESSAGE_LIMIT) -> str:
    """``str(exc)`` (``repr(exc)`` if that raises, a placeholder if both do), at most
    ``limit`` characters. May be empty, as ``str(RuntimeError())`` is."""
    try:
        message = str(exc)
    except BaseException:  # formatting must never take the caller down
        try:
            message = repr(exc)
        except BaseException:  # formatting must never take the caller down
            message = f"<{exception_type(exc)} whose str() and repr() raise>"
    return printable(message)[:limit]


def exception_text(exc: BaseException, limit: int = MESSAGE_LIMIT) -> str:
    """``'Type: message'`` (or just ``'Type'`` when the message is empty)."""
    message = exception_message(exc, limit)
    name = exception_type(exc)
    return f"{name}: {message}" if message else name


def retryable(exc: BaseException) -> bool:
    """The exception's ``retryable`` attribute (default True); True if reading it fails."""
    try:
        return bool(getattr(exc, "retryable", True))
    except BaseException:  # formatting must never take the caller down
        return True
