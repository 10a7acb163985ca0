"""Group restarts (``one_for_all``, ``rest_for_one``) in OTP's order.

A group restart (planned by ``restart.apply_crash``) runs in two phases, on the
scheduler's thread:

1. **stopping** -- the members are stopped one at a time in reverse start (spawn)
   order. A member with an attempt in flight has it re-queued as ``attempt + 1``
   (which fences the old one) and stopped by the shutdown protocol
   (``supervision.stopping``); the next member is stopped only once that attempt has
   ended or been abandoned. A member with nothing in flight (queued, waiting for its
   own children, idle) has nothing to stop (``not_running``). A temporary member is
   cancelled (``sibling_restart``) and not restarted. No member is dispatched meanwhile.
2. **starting** -- once every member has stopped and the crashed child's back-off has
   passed, the members' runs are dispatched in start order: a member only after every
   earlier member that has a run to start. The restart ends when the last one is
   dispatched (``FR-EVT-SESS-GROUP-STARTED``).

A member that crashes while its group is stopping joins that restart (its own back-off
may push the start later; the parent counts the restart once). A member that crashes
while its group is starting -- a failed restart -- restarts the group again from the
stopping phase, in order, counted once more in the parent's intensity.

Group restarts live in memory: after a host process dies, recovery resumes each session
from its checkpoint in enqueue order, without the group's order.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sessiontree._errors import StoreError
from sessiontree._reasons import Reason
from sessiontree._states import JobState, SessionState
from sessiontree.actors.ending import end_session
from sessiontree.persistence.records import CommitSummary
from sessiontree.persistence.store import Store
from sessiontree.persistence.tx import Tx
from sessiontree.supervision.restart import GroupPhase, GroupPlan, requeue

if TYPE_CHECKING:
    from sessiontree.supervision.scheduler import Running, SchedulerActor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AdvanceGroup:
    """Go on with a parent's group restart (after a store error interrupted it)."""

    parent_id: str


@dataclass(eq=False)  # one restart under way: compared (and hashed) by identity
class Group:
    parent_id: str
    strategy: str
    cause: str
    members: list[str]  # start (spawn) order
    order: dict[str, int]  # member -> spawn index
    due: float
    to_stop: list[str] = field(default_factory=list)  # stop order, still to do
    stopped: set[str] = field(default_factory=set)
    waiting: str | None = None  # the member whose attempt is being stopped
    starting: bool = False
    next_start: int = 0  # members before this index may run
    started: list[str] = field(default_factory=list)


class GroupRestarts:
    """The group restarts under way, by parent (the scheduler's, on its thread)."""

    def __init__(self, sched: SchedulerActor) -> None:
        self.sched = sched
        self.by_parent: dict[str, Group] = {}
        self.member_of: dict[str, Group] = {}
        self._claimed: list[Group] = []  # members taken for the dispatch under way

    def phase_of(self, session_id: str) -> GroupPhase:
        group = self.member_of.get(session_id)
        if group is None:
            return None
        return "starting" if group.starting else "stopping"

    def begin(self, plan: GroupPlan) -> None:
        """Run ``plan`` (committed by the crash), or fold it into the parent's group
        restart under way."""
        group = self.by_parent.get(plan.parent_id)
        if group is None:
            group = Group(plan.parent_id, plan.strategy, plan.cause, list(plan.members),
                          dict(plan.order), plan.due)
            self.by_parent[plan.parent_id] = group
        else:
            if group.starting:  # a failed restart: stop the whole group again
                group.starting, group.next_start, group.started = False, 0, []
                group.stopped = set()
            group.cause = plan.cause  # what the stops from now on are restarts for
            group.order.update(plan.order)
            group.members = sorted(set(group.members) | set(plan.members),
                                   key=group.order.__getitem__)
            group.due = max(group.due, plan.due)
        for member in group.members:
            self.member_of[member] = group
        group.stopped.add(plan.cause)  # its actor died: nothing left to stop
        group.to_stop = [m for m in reversed(group.members)
                         if m not in group.stopped and m != group.waiting]
        self.advance(group)

    def advance(self, group: Group) -> None:
        """Stop the next members, one at a time; start the group once all stopped."""
        while group.waiting is None and group.to_stop:
            member = group.to_stop[0]
            try:
                must_wait = self._stop(group, member)
            except StoreError as exc:
                log.warning("store error stopping %s for a group restart; retrying: %s",
                            member, exc)
                self.sched._retry_later(AdvanceGroup(group.parent_id))
                return
            if group.to_stop and group.to_stop[0] == member:
                group.to_stop.pop(0)
            if must_wait:
                group.waiting = member
            else:
                group.stopped.add(member)
        if group.waiting is None and not group.starting and self.by_parent.get(
                group.parent_id) is group:
            group.starting = True
            if group.due > self.sched.ctx.clock.now():
                self.sched._arm_timer(group.due)

    def advance_parent(self, message: AdvanceGroup) -> None:
        group = self.by_parent.get(message.parent_id)
        if group is not None:
            self.advance(group)

    def _stop(self, group: Group, member: str) -> bool:
        """Stop one member; True if its attempt must be waited for."""
        run = self.sched.running.get(member)
        self.sched._apply(stop_member(self.sched.ctx.store, group, member, run))
        if run is None:
            return False
        return self.sched.stops.begin(run, Reason.SIBLING_RESTART.value, group=group.parent_id)

    def member_stopped(self, parent_id: str, member: str) -> None:
        """The attempt a group waited for has ended or was abandoned."""
        group = self.by_parent.get(parent_id)
        if group is None or group.waiting != member:
            return
        group.waiting = None
        group.stopped.add(member)
        self.advance(group)

    def next_due(self, now: float) -> float | None:
        """The earliest time a group waits for (its crashed child's back-off), if any."""
        dues = [g.due for g in self.by_parent.values() if g.starting and g.due > now]
        return min(dues, default=None)

    # -- starting in order ----------------------------------------------------------------
    def may_start(self, session_id: str) -> bool:
        """False while the session's group restart holds it (stopping, back-off not
        passed, or an earlier member still to start)."""
        group = self.member_of.get(session_id)
        if group is None:
            return True
        if not group.starting or self.sched.ctx.clock.now() < group.due:
            return False
        if group.members.index(session_id) < group.next_start:
            return True  # passed over (nothing to start then): free
        return self._next(group) == session_id

    def _next(self, group: Group) -> str | None:
        while group.next_start < len(group.members):
            member = group.members[group.next_start]
            if self.sched.queue.has_session(member):
                return member
            group.next_start += 1  # nothing to start: passed over
        return None

    def claimed(self, session_id: str) -> None:
        """The member's run was taken for dispatch: the next member may follow (undone
        by :meth:`rollback` if the dispatch does not commit)."""
        group = self.member_of.get(session_id)
        if group is None or not group.starting:
            return
        if group.next_start < len(group.members) and group.members[group.next_start] == session_id:
            group.next_start += 1
            group.started.append(session_id)
            self._claimed.append(group)

    def flush(self, tx: Tx) -> None:
        """In the dispatch's transaction: the restarts whose last member it starts end
        (``FR-EVT-SESS-GROUP-STARTED``); :meth:`committed` forgets them after it."""
        for group in dict.fromkeys(self._claimed):
            if self._next(group) is None:
                tx.event("FR-EVT-SESS-GROUP-STARTED", group.parent_id, None,
                         {"members": list(group.started)})

    def committed(self) -> None:
        for group in dict.fromkeys(self._claimed):
            if self._next(group) is None:
                self._drop(group)
        self._claimed.clear()

    def rollback(self) -> None:
        """The dispatch did not commit: its members go back to waiting their turn."""
        for group in reversed(self._claimed):
            group.next_start -= 1
            group.started.pop()
        self._claimed.clear()

    # -- sessions that end ----------------------------------------------------------------
    def forget(self, session_id: str) -> None:
        """A session ended: its group restart goes on without it (or ends, with its
        parent)."""
        own = self.by_parent.get(session_id)
        if own is not None:
            self._drop(own)
        group = self.member_of.pop(session_id, None)
        if group is None:
            return
        index = group.members.index(session_id)
        group.members.remove(session_id)
        if index < group.next_start:
            group.next_start -= 1
        if session_id in group.to_stop and session_id not in self.sched.running:
            group.to_stop.remove(session_id)  # one still in a call is still waited for
        if not group.members:
            self._drop(group)

    def _drop(self, group: Group) -> None:
        if self.by_parent.get(group.parent_id) is group:
            del self.by_parent[group.parent_id]
        for member in group.members:
            if self.member_of.get(member) is group:
                del self.member_of[member]


def stop_member(store: Store, group: Group, member: str, run: Running | None) -> CommitSummary:
    """The store's half of stopping one member: a temporary member ends ``cancelled``
    (``sibling_restart``); an attempt in flight is re-queued as ``attempt + 1`` due at
    the group's start (fencing the old attempt); a member with nothing in flight is
    recorded as ``not_running``."""
    with store.transaction() as tx:
        session = tx.session(member)
        if not SessionState(session.state).terminal:
            if session.restart == "temporary":
                end_session(tx, member, SessionState.CANCELLED, Reason.SIBLING_RESTART)
            elif run is not None:
                job = tx.job(run.job_id)
                if job.state == JobState.RUNNING and job.attempt == run.attempt:
                    requeue(tx, session, job, max(0.0, group.due - tx.now), group.strategy,
                            group.cause, 0)
            if run is None:
                tx.event("FR-EVT-SESS-STOPPED", member, None, {
                    "attempt": None, "outcome": "not_running", "shutdown": session.shutdown,
                    "reason": Reason.SIBLING_RESTART.value, "group_parent_id": group.parent_id})
        summary = tx.summary
    return summary
