"""Cooperative cancellation. :class:`Cancelled` is a BaseException on purpose: no
``except Exception`` on the way may swallow it (cancellation is not failure)."""

from __future__ import annotations

import threading


class Cancelled(BaseException):
    def __init__(self, reason: str = "cancelled") -> None:
        super().__init__(reason)
        self.reason = reason


class CancelToken:
    """Set once by the scheduler; checked (or waited on) by the work it guards."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = "cancelled"

    def cancel(self, reason: str = "cancelled") -> None:
        self.reason = reason
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float | None) -> bool:
        """Block until cancelled or ``timeout`` passes; True if cancelled."""
        return self._event.wait(timeout)

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled(self.reason)
