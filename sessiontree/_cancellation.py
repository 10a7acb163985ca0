"""Cooperative cancellation. :class:`Cancelled` is a BaseException on purpose: no
``except Exception`` on the way may swallow it (cancellation is not failure)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


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
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], None]] = []
        self.reason = "cancelled"

    def cancel(self, reason: str = "cancelled") -> None:
        """Set the token (idempotent; the last reason wins) and run the callbacks once.
        Called by the scheduler."""
        with self._lock:
            first = not self._event.is_set()
            self.reason = reason
            self._event.set()
            callbacks, self._callbacks = self._callbacks, []
        if first:
            for callback in callbacks:
                self._run(callback)

    def add_callback(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` once when the token is cancelled (at once if it already is);
        return a function that removes it. The callback runs on the cancelling thread
        (the scheduler's): it must be quick and must not block -- e.g. hand a cancel to
        an event loop with ``call_soon_threadsafe``."""
        with self._lock:
            if not self._event.is_set():
                self._callbacks.append(callback)
                return lambda: self._remove(callback)
        self._run(callback)
        return lambda: None

    def _remove(self, callback: Callable[[], None]) -> None:
        with self._lock:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

    @staticmethod
    def _run(callback: Callable[[], None]) -> None:
        try:
            callback()
        except Exception:
            log.exception("cancel callback failed")

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
