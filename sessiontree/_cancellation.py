"""Cooperative cancellation. :class:`Cancelled` is a BaseException on purpose: no
``except Exception`` on the way may swallow it (cancellation is not failure)."""

from __future__ import annotations

import threading


class Cancelled(BaseException):
    """Raised inside a run that was cancelled (``reason`` says by whom or why).

    Cancellation is not failure: a cancelled session ends ``cancelled``, never
    ``failed``, and nothing retries it. Tools and providers may let it propagate; they
    must not turn it into an ordinary exception."""

    def __init__(self, reason: str = "cancelled") -> None:
        super().__init__(reason)
        self.reason = reason


class CancelToken:
    """Set once by the scheduler; checked (or waited on) by the work it guards."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = "cancelled"

    def cancel(self, reason: str = "cancelled") -> None:
        """Set the token (idempotent; the last reason wins). Called by the scheduler."""
        self.reason = reason
        self._event.set()

    @property
    def cancelled(self) -> bool:
        """True once the run was cancelled."""
        return self._event.is_set()

    def wait(self, timeout: float | None) -> bool:
        """Block until cancelled or ``timeout`` passes; True if cancelled."""
        return self._event.wait(timeout)

    def raise_if_cancelled(self) -> None:
        """Raise :class:`Cancelled` if the run was cancelled; a cheap check to call
        between steps of long work."""
        if self._event.is_set():
            raise Cancelled(self.reason)
