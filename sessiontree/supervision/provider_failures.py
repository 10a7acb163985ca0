"""What the scheduler does when a run fails with a :class:`ProviderError`.

Not a crash: no ``FR-EVT-SESS-CRASHED``, no restart counted, whatever the session's
restart type. The decisions are ``supervision.backpressure``'s; this module writes
their outcome:

- **retryable** (429, overloaded, 5xx, connection): the provider cools down
  (``FR-EVT-SESS-SCHED-COOLDOWN``: provider, reason, ``Retry-After``, until when, the
  shrunk concurrency) and the run is re-queued with ``attempt + 1`` and
  ``not_before`` at the end of the cool-down (``FR-EVT-SESS-SCHED-RETRIED``, reason
  ``provider_cooldown``); the session goes back to ``queued``. Other runs of the
  provider wait too (``FR-EVT-SESS-SCHED-THROTTLED``, ``provider_cooldown``). After
  ``BackpressurePolicy.max_retries`` retryable failures of one run the session fails
  with ``provider_retries_exhausted``.
- **not retryable** (400, 401, 403, 404, quota): the session fails at once with the
  error's reason (``provider_auth``, ``provider_bad_request``, ...), and ends alone:
  its siblings are not touched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sessiontree.persistence.records import JobRecord, SessionRecord
from sessiontree.persistence.tx import Tx
from sessiontree.providers.base import ProviderError
from sessiontree.reasons import Reason
from sessiontree.states import SessionState
from sessiontree.supervision.backpressure import decide_cooldown, decide_retry

if TYPE_CHECKING:
    from sessiontree.supervision.scheduler import ActorCrashed, SchedulerActor


def _fail(tx: Tx, session: SessionRecord, job: JobRecord, reason: Reason, error: str) -> None:
    tx.set_job(job.id, "failed", reason=reason.value)
    tx.event("FR-EVT-SESS-SCHED-FAILED", session.id, job.id,
             {"attempt": job.attempt, "reason": reason.value, "error": error[:2000]})
    tx.set_state(session.id, SessionState.FAILED, reason.value)


def on_provider_error(sched: SchedulerActor, msg: ActorCrashed) -> bool:
    """Handle ``msg`` if its error is a :class:`ProviderError`; False if it is not
    (then it is a crash, for ``supervision.restart``)."""
    err = msg.error
    if not isinstance(err, ProviderError):
        return False
    ctx = sched.ctx
    policy = ctx.limits.backpressure
    now = ctx.clock.now()
    reason = err.reason if isinstance(err.reason, Reason) else Reason.PROVIDER_SERVER_ERROR
    applied = None
    with ctx.store.transaction() as tx:
        job = tx.job(msg.job_id)
        if job.state != "running" or job.attempt != msg.attempt:
            sched.pressure.forget_run(msg.job_id)
            return True  # cancelled or superseded while it failed
        session = tx.session(msg.session_id)
        if not err.retryable:
            _fail(tx, session, job, reason, str(err))
            sched.pressure.forget_run(job.id)
        else:
            pressure = sched.pressure.of(job.provider)
            cooldown = decide_cooldown(pressure, now, err.retry_after, policy)
            failures = sched.pressure.run_failures.get(job.id, 0) + 1
            tx.event("FR-EVT-SESS-SCHED-COOLDOWN", session.id, job.id, {
                "provider": job.provider, "reason": reason.value, "status": err.status,
                "retry_after": err.retry_after, "delay": cooldown.delay,
                "until": cooldown.until, "concurrency": max(1, int(cooldown.window)),
                "run_failures": failures,
            })
            if decide_retry(failures, policy):
                attempt = job.attempt + 1
                tx.set_job(job.id, "queued", attempt=attempt, not_before=cooldown.until)
                tx.event("FR-EVT-SESS-SCHED-RETRIED", session.id, job.id, {
                    "attempt": attempt, "delay": cooldown.delay,
                    "reason": Reason.PROVIDER_COOLDOWN.value})
                if session.state == SessionState.RUNNING.value:
                    tx.set_state(session.id, SessionState.QUEUED, reason.value)
            else:
                _fail(tx, session, job, Reason.PROVIDER_RETRIES_EXHAUSTED,
                      f"{failures} retryable failures; last: {err}")
            applied = (job.provider, job.id, cooldown)
        summary = tx.summary
    if applied is not None:  # only once the outcome is committed
        sched.pressure.failed(*applied, now=now)
    sched._apply(summary)
    return True
