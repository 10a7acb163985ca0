"""WAL checkpoints off the commit path: a thread and a connection of their own.

In WAL mode SQLite copies the log back into the database file (a checkpoint) from
inside whichever commit crosses ``wal_autocheckpoint`` pages: that commit then writes
(and, with ``synchronous`` NORMAL or FULL, fsyncs) every page changed since the last
one, while every other writer waits for the store's lock. The runtime's store instead
runs a PASSIVE checkpoint from this thread every :data:`INTERVAL` seconds when anything
was committed: it never blocks a writer or a reader, it runs on another core (the driver
releases the GIL), and a commit no longer pays for it. The writer's own automatic
checkpoint stays, at :data:`SAFETY_PAGES`, so the log stays bounded even if this thread
falls behind. What a checkpoint does is SQLite's own, as safe against ``kill -9`` as
before.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

INTERVAL = 0.05
"""Seconds between checkpoints (while something is committed). Short, so each copies
little: a burst of commits (a host creating a few hundred sessions) is copied back in
slices as it goes, not in one large checkpoint that lands on the work after it, and the
log is rewound sooner. ``bench/dispatch.py --against`` the 0.2 s before: single-turn
1.08x, tool loop 1.02x, spawn 1.02x (0.02 s and 0.1 s measured about the same; no
checkpointer at all: single-turn 1.09x, but the tool loop 0.88x and spawn 0.91x)."""

SAFETY_PAGES = 8000
"""The writer connection's own ``wal_autocheckpoint`` while this thread runs (~32 MB)."""


class WalCheckpointer:
    def __init__(self, path: str, committed: Callable[[], int], interval: float = INTERVAL) -> None:
        self.path = path
        self.interval = interval
        self._committed = committed  # a count that grows with every commit
        self._con = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()  # one checkpoint at a time; stop() waits for it
        self.checkpoints = 0  # checkpoints run (for tests and benchmarks)
        self._seen = -1
        self._thread = threading.Thread(target=self._run, name="sessiontree-wal-checkpoint",
                                        daemon=True)
        self._thread.start()

    def checkpoint(self) -> tuple[int, int] | None:
        """Run one PASSIVE checkpoint now: (WAL frames, frames checkpointed), or None if
        stopped or the engine refused."""
        with self._lock:
            if self._stop.is_set():
                return None
            try:
                row = self._con.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            except sqlite3.Error as exc:
                log.debug("WAL checkpoint of %s: %s", self.path, exc)
                return None
            self.checkpoints += 1
            return int(row[1]), int(row[2])

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            count = self._committed()
            if count != self._seen:
                self._seen = count
                self.checkpoint()

    def stop(self) -> None:
        """Stop the thread and close its connection (before the store closes its own)."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._con.close()
