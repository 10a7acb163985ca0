"""Clocks: the real one, and the manual one tests inject to control time.

The scheduler asks its clock for ``now()`` and for ``call_later()``; nothing in the
library sleeps. :class:`ManualClock` fires due callbacks only when a test advances it.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from typing import Protocol


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def now(self) -> float: ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> Cancellable: ...


class SystemClock:
    """Wall time for timestamps, ``threading.Timer`` for delayed callbacks."""

    def now(self) -> float:
        return time.time()

    def call_later(self, delay: float, callback: Callable[[], None]) -> Cancellable:
        timer = threading.Timer(max(0.0, delay), callback)
        timer.daemon = True
        timer.start()
        return timer


class _Handle:
    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock:
    """A clock that moves only when :meth:`advance` is called (thread-safe)."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()
        self._seq = itertools.count()
        self._due: list[tuple[float, int, _Handle, Callable[[], None]]] = []

    def now(self) -> float:
        with self._lock:
            return self._now

    def call_later(self, delay: float, callback: Callable[[], None]) -> Cancellable:
        handle = _Handle()
        with self._lock:
            heapq.heappush(self._due, (self._now + max(0.0, delay), next(self._seq), handle, callback))
        return handle

    def pending(self) -> list[float]:
        """Delays (from now) of the callbacks not yet fired, soonest first."""
        with self._lock:
            return sorted(t - self._now for t, _, h, _ in self._due if not h.cancelled)

    def advance(self, seconds: float) -> None:
        """Move time forward and run every callback that came due, in order."""
        with self._lock:
            self._now += seconds
            now = self._now
        while True:
            with self._lock:
                if not self._due or self._due[0][0] > now:
                    return
                _, _, handle, callback = heapq.heappop(self._due)
            if not handle.cancelled:
                callback()
