"""Pause and resume: the scheduler's side of an operator's hold on a session.

A paused session gets nothing dispatched. What that means in each state:

- ``queued``: it moves to ``paused`` at once; its job stays ``queued`` in the store.
- ``running``: its model_run finishes the step it is in (its commits, its tools); when
  its next run would be dispatched it moves to ``paused`` instead. While it runs, a spawn
  it asks for is rejected with reason ``paused``.
- ``waiting`` (for children), ``idle`` (a conversation), ``created``: nothing runs for
  them; they stay in that state, marked paused, and move to ``paused`` when their next
  run would be dispatched (children announced, a message came).

Either way the session holds no thread while paused, no budget is reserved for it and no
restart is counted. Resuming a ``paused`` session moves it back to ``queued`` and pushes
its queued job into the scheduler's queue like any newly queued job: FIFO within its
root tree, its tree keeping its round-robin turn. Pausing a paused session or resuming
one that is not paused changes nothing. The paused set lives in the ``pause`` table
(``persistence.commands``), so a pause outlives the host.

Runs on the scheduler's thread (a ``Pause``/``Resume`` ask), so a pause and a dispatch
never interleave.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pykka

from sessiontree._errors import IllegalTransition
from sessiontree._reasons import Reason
from sessiontree._states import JobState, SessionState
from sessiontree.persistence import commands
from sessiontree.persistence.records import SessionRecord
from sessiontree.supervision.queue import QueuedJob

if TYPE_CHECKING:
    from sessiontree.supervision.scheduler import SchedulerActor


@dataclass(frozen=True)
class Pause:
    """Ask the scheduler to pause a session (and its live descendants if ``subtree``);
    it answers with the ids newly paused."""

    session_id: str
    subtree: bool = False
    by: str = "host"
    note: str | None = None


@dataclass(frozen=True)
class Resume:
    """Ask the scheduler to resume a session (and its descendants if ``subtree``); it
    answers with the ids resumed."""

    session_id: str
    subtree: bool = False
    by: str = "host"
    note: str | None = None


def subtree_of(sessions: list[SessionRecord], top_id: str) -> list[SessionRecord]:
    """``top_id`` and its descendants among ``sessions`` (one tree's), top first."""
    kids: dict[str | None, list[SessionRecord]] = {}
    for s in sessions:
        kids.setdefault(s.parent_id, []).append(s)
    out = [s for s in sessions if s.id == top_id]
    i = 0
    while i < len(out):
        out.extend(kids.get(out[i].id, []))
        i += 1
    return out


class Pauses:
    """The scheduler's paused set and the moves in and out of ``paused``."""

    def __init__(self, sched: SchedulerActor, wake: object) -> None:
        self.sched = sched
        self._wake = wake  # the message that makes the scheduler pump its queue
        self.paused: set[str] = set()

    def load(self) -> None:
        self.paused = commands.paused_ids(self.sched.ctx.store)

    def handle(self, message: Pause | Resume) -> list[str]:
        return self._pause(message) if isinstance(message, Pause) else self._resume(message)

    def _targets(self, message: Pause | Resume) -> list[SessionRecord]:
        store = self.sched.ctx.store
        top = store.session(message.session_id)  # UnknownSession for a bad id
        if SessionState(top.state).terminal:
            to = "paused" if isinstance(message, Pause) else "queued"
            raise IllegalTransition(top.id, top.state, to)
        found = subtree_of(store.sessions(root_id=top.root_id), top.id) if message.subtree else [top]
        return [s for s in found if not SessionState(s.state).terminal]

    def _pause(self, message: Pause) -> list[str]:
        changed = []
        with self.sched.ctx.store.transaction() as tx:
            for s in self._targets(message):
                if not commands.add_pause(tx, s.id, message.by, message.note):
                    continue
                tx.event("FR-EVT-SESS-PAUSED", s.id, None,
                         {"from_state": s.state, "by": message.by, "note": message.note})
                if s.state == SessionState.QUEUED.value:
                    tx.set_state(s.id, SessionState.PAUSED, Reason.PAUSED)
                changed.append(s.id)
        self.paused.update(changed)
        return changed

    def _resume(self, message: Resume) -> list[str]:
        changed, requeue = [], []
        with self.sched.ctx.store.transaction() as tx:
            for s in self._targets(message):
                removed = commands.remove_pause(tx, s.id)
                if not removed and s.state != SessionState.PAUSED.value:
                    continue
                to_state = s.state
                if s.state == SessionState.PAUSED.value:
                    tx.set_state(s.id, SessionState.QUEUED, Reason.RESUMED)
                    to_state = SessionState.QUEUED.value
                    requeue.append(s.id)
                tx.event("FR-EVT-SESS-RESUMED", s.id, None,
                         {"to_state": to_state, "by": message.by, "note": message.note})
                changed.append(s.id)
        self.paused.difference_update(changed)
        store = self.sched.ctx.store
        for sid in requeue:
            for job in store.jobs(session_id=sid, states=[JobState.QUEUED]):
                self.sched._push(QueuedJob.of(job), job.not_before)
        return changed

    def holds(self, tx: Any, session_id: str) -> bool:
        """At dispatch: True if ``session_id`` is paused, then it moves to ``paused`` (from
        ``queued``) and its job stays queued in the store, out of the scheduler's queue
        until it is resumed. The slot it was claimed for is filled by the next pump."""
        if session_id not in self.paused:
            return False
        if tx.session(session_id).state == SessionState.QUEUED.value:
            tx.set_state(session_id, SessionState.PAUSED, Reason.PAUSED)
        with contextlib.suppress(pykka.ActorDeadError):
            self.sched.actor_ref.tell(self._wake)
        return True
