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
``restart_intensity`` and its parent gets an announce-back saying so.

Strategies over a parent's children (the parent's ``child_strategy``):
- ``one_for_one`` (default): only the crashed child is restarted;
- ``one_for_all``: every running sibling is restarted too (temporary ones cancelled);
- ``rest_for_one``: the siblings spawned after the crashed one are restarted.
When a child fails past its intensity the failure escalates by the same strategy: under
``one_for_all`` its live siblings are cancelled (``sibling_failed``), under
``rest_for_one`` the younger ones are; the parent decides what to do next. A child that
crashes and is not restarted by its type (``temporary``, or ``transient`` on a
non-retryable error) ends alone: its siblings are not touched.

:func:`decide_restart` and :func:`affected_siblings` are pure (tested by tables);
:func:`apply_crash` writes their outcome in one transaction and returns what the
scheduler must do in memory.
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


@dataclass
class CrashOutcome:
    """What the scheduler applies in memory after :func:`apply_crash` committed."""

    summary: CommitSummary = field(default_factory=CommitSummary)
    restarted_siblings: list[str] = field(default_factory=list)


def apply_crash(store: Store, policy: RestartPolicy, msg: ActorCrashed) -> CrashOutcome | None:
    """Record the crash and apply the decision in one transaction. Returns None if the
    job was cancelled or superseded while it died (nothing to restart)."""
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
        if decision.action == "fail":
            assert decision.reason is not None
            _fail(tx, session, job, decision.reason, exception_text(err))
        else:
            tx.update_session(session.id, restart_log=list(decision.restart_log))
            _requeue(tx, session, job, decision.delay, "one_for_one", session.id,
                     decision.restarts_in_period)
        if session.parent_id is not None:
            strategy = tx.session(session.parent_id).child_strategy
            live = [(s.id, s.spawn_index) for s in tx.children_of(session.parent_id, live_only=True)
                    if s.id != session.id]
            for sib_id in affected_siblings(strategy, decision, session.spawn_index, live):
                sib = tx.session(sib_id)
                if decision.action == "fail" or sib.restart == "temporary":
                    why = Reason.SIBLING_FAILED if decision.action == "fail" else Reason.SIBLING_RESTART
                    end_session(tx, sib.id, SessionState.CANCELLED, why)
                    continue
                for sib_job in tx.live_jobs(sib.id):
                    if sib_job.state == JobState.RUNNING:
                        _requeue(tx, sib, sib_job, 0.0, strategy, session.id, 0)
                        outcome.restarted_siblings.append(sib.id)
        outcome.summary = tx.summary
    return outcome


def _requeue(
    tx: Tx, session: SessionRecord, job: JobRecord, delay: float, strategy: str, cause: str,
    restarts: int,
) -> None:
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
