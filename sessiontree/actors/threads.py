"""Threads for session actors, reused from one actor to the next.

A session actor lives for one model_run (it is passivated between runs), and starting
a thread costs more than the run's own bookkeeping at zero provider latency. Each
actor still runs its own pykka actor loop on a thread of its own for as long as it
lives; the thread is parked when the actor stops and handed to the next actor that
starts. The pool never makes an actor wait: with no parked thread, a new one starts.
At most ``keep`` threads stay parked; the rest end.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

import pykka

from sessiontree._ids import new_uuid

log = logging.getLogger(__name__)

Work = Callable[[], None]


def simple_inbox() -> queue.SimpleQueue[Any]:
    """An actor inbox: pykka's inbox protocol (put, get, empty) without Conditions."""
    return queue.SimpleQueue()


def init_actor(actor: pykka.Actor) -> None:
    """Set what ``pykka.Actor.__init__`` sets (pykka 4.5, pinned), in its place.

    pykka names each actor by ``uuid.uuid4()``, a read of the OS's randomness at every
    start; a session actor starts at every model_run, on the scheduler's thread, and
    that system call lets the GIL go (2-3% of a single-turn run, ``bench/dispatch.py``).
    The URN here is as random, from the id pool (``sessiontree._ids``).
    ``tests/test_actor_threads.py`` checks that pykka sets nothing more."""
    actor.actor_urn = new_uuid().urn
    actor.actor_inbox = actor._create_actor_inbox()
    actor.actor_stopped = threading.Event()
    actor._actor_ref = pykka.ActorRef(actor)


class ActorThreads:
    def __init__(self, name: str = "SessionActor", keep: int = 16) -> None:
        self.name = name
        self.keep = keep
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._busy = 0
        self._parked: list[tuple[queue.SimpleQueue[Work | None], threading.Thread]] = []
        self._closed = False
        self.started = 0  # threads started so far (for tests and benchmarks)

    def run(self, work: Work) -> None:
        """Run ``work`` (an actor's loop) on a parked thread, or on a new one."""
        thread = None
        with self._lock:
            if self._closed:
                raise RuntimeError("actor threads are closed")
            self._busy += 1
            if self._parked:
                box, _ = self._parked.pop()
            else:
                box = queue.SimpleQueue()
                thread = threading.Thread(target=self._serve, args=(box,), daemon=True,
                                          name=f"{self.name}-{self.started}")
                self.started += 1
        box.put(work)
        if thread is not None:
            thread.start()  # outside the lock: starting waits for the thread to run

    def _serve(self, box: queue.SimpleQueue[Work | None]) -> None:
        while (work := box.get()) is not None:
            try:
                work()
            except BaseException:  # the actor loop handles its own failures
                log.exception("actor thread ended by an error")
                self._done(None)
                return
            if not self._done((box, threading.current_thread())):
                return

    def _done(self, parking: tuple[queue.SimpleQueue[Work | None], threading.Thread] | None) -> bool:
        """An actor's loop ended: park its thread (True) or let it end (False)."""
        with self._lock:
            self._busy -= 1
            self._idle.notify_all()
            if parking is None or self._closed or len(self._parked) >= self.keep:
                return False
            self._parked.append(parking)
            return True

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no actor loop runs on these threads; False on timeout."""
        with self._lock:
            return self._idle.wait_for(lambda: self._busy == 0, timeout)

    def close(self, timeout: float = 10.0) -> None:
        """End the parked threads; a busy one ends when its actor stops."""
        with self._lock:
            self._closed = True
            parked, self._parked = self._parked, []
        for box, _ in parked:
            box.put(None)
        for _, thread in parked:
            thread.join(timeout)
