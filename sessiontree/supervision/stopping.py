"""The shutdown protocol: how the scheduler stops one running attempt.

A stop (a group restart stopping a member, a cancelled session or job, a teardown)
first **cancels cooperatively**: the attempt's token is set, and the attempt is already
fenced in the store by the transaction that stopped it, so nothing it does after can be
written (its late reply is discarded, only its cost is charged). Then the scheduler
waits up to the session's **shutdown time** (``shutdown``, default
:data:`~sessiontree._limits.DEFAULT_SHUTDOWN` = 5 s) for the attempt to end. If it has
not ended by then it is **abandoned**: no longer waited for, so its session (and a group
waiting for it) goes on. A ``brutal_kill`` child (``shutdown=0``) is abandoned at once.
Every stop ends with one ``FR-EVT-SESS-STOPPED`` saying how: ``stopped``, ``crashed``,
``abandoned`` or ``killed``.

Where we differ from OTP: a Python thread cannot be killed. An abandoned attempt's
thread runs on until its call returns; it can write nothing, and until it returns it
still counts against the global and per-provider limits (it is still a call in flight),
though not against its session's one-running-job rule.

Runs on the scheduler's thread only; timers only send :class:`StopExpired`.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pykka

from sessiontree._errors import StoreError

if TYPE_CHECKING:
    from sessiontree.supervision.scheduler import Running, SchedulerActor

log = logging.getLogger(__name__)

Key = tuple[str, str, int]  # (session id, job id, attempt)


@dataclass(frozen=True)
class StopExpired:
    """A stopped attempt's shutdown time passed (sent by its timer)."""

    key: Key


@dataclass
class _Stop:
    run: Running
    reason: str
    timer: Any
    group: str | None  # the parent whose group restart waits for this stop


def key_of(run: Running) -> Key:
    return (run.session_id, run.job_id, run.attempt)


class Stops:
    """Attempts being stopped and attempts abandoned (the scheduler's, on its thread)."""

    def __init__(self, sched: SchedulerActor) -> None:
        self.sched = sched
        self.stopping: dict[Key, _Stop] = {}
        self.abandoned: dict[Key, Running] = {}

    def begin(self, run: Running, reason: str, *, group: str | None = None) -> bool:
        """Stop ``run`` (already fenced in the store). True while it must be waited for;
        False once it is abandoned (``brutal_kill``). ``group`` asks to be told (through
        ``GroupRestarts.member_stopped``) when it stops. Idempotent."""
        key = key_of(run)
        if key in self.abandoned:
            return False
        stop = self.stopping.get(key)
        if stop is not None:
            stop.group = stop.group or group
            return True
        run.token.cancel(reason)
        if run.shutdown <= 0:
            self._record(run, "killed", reason, group)
            self._abandon(key, run)
            return False
        me = self.sched.actor_ref

        def expire() -> None:  # on the clock's thread: only send a message
            with contextlib.suppress(pykka.ActorDeadError):
                me.tell(StopExpired(key))

        timer = self.sched.ctx.clock.call_later(run.shutdown, expire)
        self.stopping[key] = _Stop(run, reason, timer, group)
        return True

    def ended(self, run: Running, *, crashed: bool) -> None:
        """The attempt ended (its actor reported): a stop waiting for it is done."""
        stop = self.stopping.pop(key_of(run), None)
        if stop is None:
            return
        stop.timer.cancel()
        self._record(run, "crashed" if crashed else "stopped", stop.reason, stop.group)
        self._tell_group(stop, run)

    def expired(self, message: StopExpired) -> None:
        """The shutdown time passed and the attempt still runs: abandon it."""
        stop = self.stopping.pop(message.key, None)
        if stop is None:
            return
        run = stop.run
        self._record(run, "abandoned", stop.reason, stop.group)
        self._abandon(message.key, run)
        log.warning("session %s attempt %d did not stop within %.1fs; abandoned",
                    run.session_id, run.attempt, run.shutdown)
        self._tell_group(stop, run)

    def release(self, session_id: str, job_id: str, attempt: int) -> Running | None:
        """An abandoned attempt finally returned: free the capacity it still held."""
        run = self.abandoned.pop((session_id, job_id, attempt), None)
        if run is not None:
            self.sched.by_provider[run.provider] -= 1
        return run

    def close(self) -> list[Any]:
        """At shutdown: cancel the timers; return the abandoned attempts' actors."""
        for stop in self.stopping.values():
            stop.timer.cancel()
        self.stopping.clear()
        actors = [run.actor for run in self.abandoned.values() if run.actor is not None]
        self.abandoned.clear()
        return actors

    def _abandon(self, key: Key, run: Running) -> None:
        sched = self.sched
        if sched.running.get(run.session_id) is run:
            del sched.running[run.session_id]  # the session may go on; the call still counts
        self.abandoned[key] = run

    def _tell_group(self, stop: _Stop, run: Running) -> None:
        if stop.group is not None:
            self.sched.groups.member_stopped(stop.group, run.session_id)

    def _record(self, run: Running, outcome: str, reason: str, group: str | None) -> None:
        try:
            with self.sched.ctx.store.transaction() as tx:
                tx.event("FR-EVT-SESS-STOPPED", run.session_id, run.job_id, {
                    "attempt": run.attempt, "outcome": outcome, "shutdown": run.shutdown,
                    "reason": reason, "group_parent_id": group})
        except StoreError as exc:  # the stop itself stands: never hold a group on a log line
            log.warning("could not record the stop of %s: %s", run.session_id, exc)
