"""The lease heartbeat: keep this process's owner lease fresh, and notice when the store
file is deleted or replaced under it.

Every ``interval`` seconds (a third of the lease TTL) the heartbeat first compares the
file at the store's path with the one opened (``persistence.identity``), then refreshes
the lease. When the file is gone or replaced it stops for good: it logs an ERROR, writes
``FR-EVT-SESS-STORE-LOST`` (payload: ``path``, ``problem`` -- ``gone`` or ``replaced``
--, ``expected`` and ``found`` file identities) into the store it has open, seals that
store (its WAL folded into its own file, then closed: see ``identity.seal`` for where
the event therefore ends up), and calls ``on_lost`` with the :class:`StoreLost` error.

Beats are paced by a :class:`~sessiontree._clock.Clock` (``call_later``): the system clock
in production (each beat on a short-lived timer thread), a ``ManualClock`` in tests,
which then beat exactly when they advance it. A beat only touches the store and the
lease row, never an actor's state.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sessiontree._clock import Cancellable, Clock
from sessiontree._errors import StoreLost, StoreReplaced
from sessiontree.persistence import identity, lease
from sessiontree.persistence.store import Store

log = logging.getLogger(__name__)


class Heartbeat:
    def __init__(
        self, store: Store, owner_id: str, interval: float, clock: Clock,
        on_lost: Callable[[StoreLost], None],
    ) -> None:
        self.store = store
        self.owner_id = owner_id
        self.interval = interval
        self.clock = clock
        self.on_lost = on_lost
        self.path = identity.absolute(store.path)
        self.expected = identity.identity_of(self.path)
        self._lock = threading.Lock()  # one beat at a time; stop() waits for a beat
        self._stopped = False
        self._handle: Cancellable | None = None

    def start(self) -> None:
        self._schedule()

    def stop(self) -> None:
        """No beat runs after this returns."""
        with self._lock:
            self._stopped = True
            if self._handle is not None:
                self._handle.cancel()

    def _schedule(self) -> None:
        with self._lock:
            if not self._stopped:
                self._handle = self.clock.call_later(self.interval, self.beat)

    def beat(self) -> None:
        """One heartbeat (normally called by the clock)."""
        lost = None
        with self._lock:
            if self._stopped:
                return
            lost = identity.check(self.path, self.expected)
            if lost is not None:
                self._stopped = True
                self._record(lost)
            else:
                try:
                    if not lease.heartbeat(self.store, self.owner_id):
                        log.error("store lease lost: another process took over %s", self.path)
                except Exception:
                    log.exception("lease heartbeat failed")
        if lost is not None:
            self.on_lost(lost)
        else:
            self._schedule()

    def _record(self, lost: StoreLost) -> None:
        log.error("%s", lost)
        try:
            with self.store.transaction() as tx:
                tx.event("FR-EVT-SESS-STORE-LOST", None, None, {
                    "path": self.path,
                    "problem": "replaced" if isinstance(lost, StoreReplaced) else "gone",
                    "expected": lost.facts.get("expected") or "",
                    "found": lost.facts.get("found"),
                })
        except Exception:
            log.exception("could not record the lost store in it")
        identity.seal(self.store)
