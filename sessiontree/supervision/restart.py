"""What the SchedulerActor does when a session actor dies (pykka's ``on_failure``).

Restart types, after OTP:
- ``permanent``: restarted after every crash, bounded only by the restart intensity;
- ``transient`` (default): restarted after a crash unless the exception says it is not
  worth retrying (``retryable = False``, e.g. a provider refusing the request);
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
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sessiontree.persistence.records import JobRecord, SessionRecord
from sessiontree.persistence.tx import Tx
from sessiontree.reasons import Reason
from sessiontree.safe_text import exception_message, exception_text, exception_type
from sessiontree.safe_text import retryable as safe_retryable
from sessiontree.states import TERMINAL_STATES, SessionState

if TYPE_CHECKING:
    from sessiontree.supervision.scheduler import ActorCrashed, SchedulerActor

_TERMINAL = [s.value for s in TERMINAL_STATES]


def _requeue(
    tx: Tx, session: SessionRecord, job: JobRecord, delay: float, strategy: str, cause: str,
    restarts: int,
) -> None:
    attempt = job.attempt + 1
    tx.set_job(job.id, "queued", attempt=attempt, not_before=tx.now + delay)
    tx.event("FR-EVT-SESS-SCHED-RETRIED", session.id, job.id,
             {"attempt": attempt, "delay": delay, "reason": "restart"})
    tx.event("FR-EVT-SESS-RESTARTED", session.id, job.id, {
        "attempt": attempt, "delay": delay, "restarts_in_period": restarts,
        "strategy": strategy, "cause_session_id": cause,
    })
    if session.state == SessionState.RUNNING.value:
        tx.set_state(session.id, SessionState.QUEUED, "restart")


def _fail(tx: Tx, session: SessionRecord, job: JobRecord, reason: Reason, error: str) -> None:
    tx.set_job(job.id, "failed", reason=reason.value)
    tx.event("FR-EVT-SESS-SCHED-FAILED", session.id, job.id,
             {"attempt": job.attempt, "reason": reason.value, "error": error})
    tx.set_state(session.id, SessionState.FAILED, reason.value)


def _affected_siblings(tx: Tx, session: SessionRecord, strategy: str) -> list[SessionRecord]:
    if session.parent_id is None or strategy == "one_for_one":
        return []
    m = tx.m
    q = m.session.select(m.session.id).where(
        (m.session.parent_id == session.parent_id)
        & (m.session.id != session.id)
        & (m.session.state.not_in(_TERMINAL))
    )
    if strategy == "rest_for_one":
        q = q.where(m.session.spawn_index > session.spawn_index)
    return [tx.session(r.id) for r in q.order_by(m.session.spawn_index)]


def on_crash(sched: SchedulerActor, msg: ActorCrashed) -> None:
    ctx = sched.ctx
    policy = ctx.limits.restart
    err = msg.error
    error_text = exception_text(err)  # the exception's own __str__ may raise: never here
    restarted_siblings: list[str] = []
    with ctx.store.transaction() as tx:
        job = tx.job(msg.job_id)
        if job.state != "running" or job.attempt != msg.attempt:
            return  # cancelled or superseded while it died: nothing to restart
        session = tx.session(msg.session_id)
        tx.event("FR-EVT-SESS-CRASHED", session.id, job.id,
                 {"error_type": exception_type(err), "error": exception_message(err),
                  "attempt": job.attempt})
        retryable = safe_retryable(err)
        failed = escalate = False
        if session.restart == "temporary" or (session.restart == "transient" and not retryable):
            _fail(tx, session, job, Reason.CRASHED, error_text)
            failed = True
        else:
            recent = [t for t in session.restart_log if tx.now - t < policy.period]
            if len(recent) >= policy.max_restarts:
                _fail(tx, session, job, Reason.RESTART_INTENSITY, error_text)
                failed = escalate = True
            else:
                n = len(recent) + 1
                tx.update_session(session.id, restart_log=[*recent, tx.now])
                _requeue(tx, session, job, policy.delay(n), "one_for_one", session.id, n)
        strategy = tx.session(session.parent_id).child_strategy if session.parent_id else ""
        if failed and not escalate:
            strategy = "one_for_one"  # a child that is not restarted ends alone, as in OTP
        for sib in _affected_siblings(tx, session, strategy):
            if failed or sib.restart == "temporary":
                reason = Reason.SIBLING_FAILED if failed else Reason.SIBLING_RESTART
                tx.set_state(sib.id, SessionState.CANCELLED, reason.value)
                continue
            for sib_job in tx.live_jobs(sib.id):
                if sib_job.state == "running":
                    _requeue(tx, sib, sib_job, 0.0, strategy, session.id, 0)
                    restarted_siblings.append(sib.id)
        summary = tx.summary
    sched._apply(summary)
    for sib_id in restarted_siblings:
        run = sched.running.get(sib_id)
        if run is not None:
            run.token.cancel(Reason.SIBLING_RESTART.value)
