"""What supervision does when a session actor dies: decide, then apply.

Restart types, after OTP:
- ``permanent``: restarted after every crash, bounded only by the restart intensity;
- ``transient`` (default): restarted after a crash unless the exception says it is not
  worth retrying (``retryable = False``). A ``ProviderError`` is not a crash: the
  scheduler's back-pressure handles it (``supervision.provider_failures``);
- ``temporary``: never restarted; the session fails with reason ``crashed``.

A restart re-queues the interrupted model_run with ``attempt + 1`` after an exponential
back-off; the new attempt resumes from the latest checkpoint. Past the intensity
(``RestartPolicy.max_restarts`` in ``period`` seconds) the session fails with reason
``restart_intensity`` and its parent gets an announce-back saying so. Every restart of a
child also counts in its parent's supervisor intensity (``supervision.intensity``):
past it, the parent gives up instead of restarting.

Strategies over a parent's children (the parent's ``child_strategy``):
- ``one_for_one`` (default): only the crashed child is restarted;
- ``one_for_all``: every live sibling is restarted with it, as a group;
- ``rest_for_one``: the siblings spawned after the crashed one are, as a group.
A group restart (``supervision.groups``) stops the members in reverse start order,
starts none until all have stopped, and starts them all again in start order once the
crashed child's back-off has passed; temporary members are stopped and not restarted.
When a child fails past its intensity the failure escalates by the same strategy
(``intensity.escalate``). A child that crashes and is not restarted by its type
(``temporary``, or ``transient`` on a non-retryable error) ends alone.

:func:`decide_restart` and :func:`affected_siblings` are pure (tested by tables);
:func:`apply_crash` writes their outcome in one transaction and returns what the
scheduler must do in memory (the group restart to run, if any).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from sessiontree._limits import RestartPolicy, RestartType, Strategy
from sessiontree._reasons import Reason
from sessiontree._safe_text import exception_message, exception_text, exception_type
from sessiontree._safe_text import retryable as safe_retryable
from sessiontree._states import JobState, SessionState
from sessiontree.actors.ending import end_session
from sessiontree.actors.messages import ActorCrashed
from sessiontree.persistence.records import CommitSummary, JobRecord, SessionRecord
from sessiontree.persistence.store import Store
from sessiontree.persistence.tx import Tx
from sessiontree.supervision.intensity import decide_supervisor, escalate, give_up

GroupPhase = Literal["stopping", "starting"] | None


@dataclass(frozen=True)
class RestartDecision:
    """What to do with a crashed session: restart it after ``delay``, or fail it."""

    action: Literal["restart", "fail"]
    reason: Reason | None = None  # why it fails: ``crashed`` or ``restart_intensity``
    delay: float = 0.0
    restart_log: tuple[float, ...] = ()  # the restarts in the period, this one included
    escalate: bool = False  # the failure applies the parent's strategy to the siblings

    @property
    def restarts_in_period(self) -> int:
        return len(self.restart_log)


def decide_restart(
    policy: RestartPolicy, restart_type: RestartType | str, retryable: bool,
    restart_log: tuple[float, ...], now: float,
) -> RestartDecision:
    """The decision for one crash, from the policy, the session's restart type, whether
    the error may be retried, and the times of its earlier restarts. Pure."""
    if restart_type == "temporary" or (restart_type == "transient" and not retryable):
        return RestartDecision("fail", Reason.CRASHED)
    recent = tuple(t for t in restart_log if now - t < policy.period)
    if len(recent) >= policy.max_restarts:
        return RestartDecision("fail", Reason.RESTART_INTENSITY, restart_log=recent, escalate=True)
    n = len(recent) + 1
    return RestartDecision("restart", delay=policy.delay(n), restart_log=(*recent, now))


def affected_siblings(
    strategy: Strategy | str, decision: RestartDecision, crashed_index: int,
    live_siblings: list[tuple[str, int]],
) -> list[str]:
    """Ids of the live siblings (``(id, spawn_index)``, in spawn order) that the crash
    of the child at ``crashed_index`` reaches under the parent's ``strategy``. Pure."""
    if decision.action == "fail" and not decision.escalate:
        return []  # a child that is not restarted ends alone, as in OTP
    if strategy == "one_for_all":
        return [sid for sid, _ in live_siblings]
    if strategy == "rest_for_one":
        return [sid for sid, index in live_siblings if index > crashed_index]
    return []


@dataclass(frozen=True)
class GroupPlan:
    """A group restart decided in the crash's transaction, for the scheduler to run."""

    parent_id: str
    strategy: str
    cause: str  # the crashed child (already stopped: its actor died)
    members: tuple[str, ...]  # in start (spawn) order, the cause included
    order: dict[str, int]  # member -> spawn index
    due: float  # when the group may start again: the crashed child's back-off


@dataclass
class CrashOutcome:
    """What the scheduler applies in memory after :func:`apply_crash` committed."""

    summary: CommitSummary = field(default_factory=CommitSummary)
    group: GroupPlan | None = None


def apply_crash(
    store: Store, policy: RestartPolicy, msg: ActorCrashed, in_group: GroupPhase = None
) -> CrashOutcome | None:
    """Record the crash and apply the decision in one transaction. Returns None if the
    job was cancelled or superseded while it died (nothing to restart).

    ``in_group`` is the phase of a group restart the crashed session belongs to, if
    any: a crash while the group is still ``stopping`` joins that restart (its back-off
    may delay the group; it is not counted again in the parent's intensity); a crash
    while it is ``starting`` restarts the group again, counted once."""
    err = msg.error
    outcome = CrashOutcome()
    with store.transaction() as tx:
        job = tx.job(msg.job_id)
        if job.state != JobState.RUNNING or job.attempt != msg.attempt:
            return None
        session = tx.session(msg.session_id)
        # the exception's own __str__ (or __repr__, or a retryable property) may raise
        tx.event("FR-EVT-SESS-CRASHED", session.id, job.id,
                 {"error_type": exception_type(err), "error": exception_message(err),
                  "attempt": job.attempt})
        decision = decide_restart(policy, session.restart, safe_retryable(err),
                                  session.restart_log, tx.now)
        parent = tx.session(session.parent_id) if session.parent_id is not None else None
        if decision.action == "fail":
            assert decision.reason is not None
            _fail(tx, session, job, decision.reason, exception_text(err))
            if parent is not None and decision.escalate:
                escalate(tx, parent, tx.session(session.id))
            outcome.summary = tx.summary
            return outcome
        restarts = 0
        if parent is not None:
            restarts = len(parent.child_restart_log)
            if in_group != "stopping":
                sup = decide_supervisor(parent.child_max_restarts, parent.child_period,
                                        parent.child_restart_log, tx.now)
                if sup.give_up:  # nothing restarts: the crashed child goes with the rest
                    give_up(tx, parent, session, sup)
                    outcome.summary = tx.summary
                    return outcome
                tx.update_session(parent.id, child_restart_log=list(sup.restart_log))
                restarts = sup.restarts_in_period
        tx.update_session(session.id, restart_log=list(decision.restart_log))
        strategy = parent.child_strategy if parent is not None else "one_for_one"
        requeue(tx, session, job, decision.delay, strategy, session.id,
                decision.restarts_in_period)
        if parent is not None and strategy != "one_for_one":
            outcome.group = _plan(tx, parent, session, decision, restarts, in_group)
        outcome.summary = tx.summary
    return outcome


def _plan(
    tx: Tx, parent: SessionRecord, crashed: SessionRecord, decision: RestartDecision,
    restarts: int, in_group: GroupPhase,
) -> GroupPlan:
    live = [(s.id, s.spawn_index) for s in tx.children_of(parent.id, live_only=True)]
    reached = set(affected_siblings(parent.child_strategy, decision, crashed.spawn_index,
                                    [c for c in live if c[0] != crashed.id]))
    members = tuple(sid for sid, _ in live if sid in reached or sid == crashed.id)
    plan = GroupPlan(parent.id, parent.child_strategy, crashed.id, members,
                     dict(live), tx.now + decision.delay)
    tx.event("FR-EVT-SESS-GROUP-RESTART", parent.id, None, {
        "strategy": plan.strategy, "cause_session_id": crashed.id, "members": list(members),
        "stop_order": [m for m in reversed(members) if m != crashed.id],
        "delay": decision.delay, "restarts_in_period": restarts, "again": in_group is not None,
        "counted": in_group != "stopping",
    })
    return plan


def requeue(
    tx: Tx, session: SessionRecord, job: JobRecord, delay: float, strategy: str, cause: str,
    restarts: int,
) -> None:
    """Queue ``job`` again as a new attempt after ``delay`` (fencing the old attempt)."""
    attempt = job.attempt + 1
    tx.set_job(job.id, JobState.QUEUED, attempt=attempt, not_before=tx.now + delay)
    tx.event("FR-EVT-SESS-SCHED-RETRIED", session.id, job.id,
             {"attempt": attempt, "delay": delay, "reason": "restart"})
    tx.event("FR-EVT-SESS-RESTARTED", session.id, job.id, {
        "attempt": attempt, "delay": delay, "restarts_in_period": restarts,
        "strategy": strategy, "cause_session_id": cause,
    })
    if session.state == SessionState.RUNNING:
        tx.set_state(session.id, SessionState.QUEUED, Reason.RESTART)


def _fail(tx: Tx, session: SessionRecord, job: JobRecord, reason: Reason, error: str) -> None:
    tx.set_job(job.id, JobState.FAILED, reason=reason.value)
    tx.event("FR-EVT-SESS-SCHED-FAILED", session.id, job.id,
             {"attempt": job.attempt, "reason": reason.value, "error": error})
    end_session(tx, session.id, SessionState.FAILED, reason)
