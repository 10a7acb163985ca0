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

from sessiontree._limits import Limits
from sessiontree._reasons import Reason
from sessiontree._safe_text import exception_text
from sessiontree._states import JobState, SessionState
from sessiontree.actors.ending import end_session
from sessiontree.actors.messages import ActorCrashed
from sessiontree.persistence.records import CommitSummary, JobRecord, SessionRecord
from sessiontree.persistence.store import Store
from sessiontree.persistence.tx import Tx
from sessiontree.providers.base import ProviderError
from sessiontree.supervision.backpressure import Backpressure, decide_cooldown, decide_retry


def _fail(tx: Tx, session: SessionRecord, job: JobRecord, reason: Reason, error: str) -> None:
    tx.set_job(job.id, JobState.FAILED, reason=reason.value)
    tx.event("FR-EVT-SESS-SCHED-FAILED", session.id, job.id,
             {"attempt": job.attempt, "reason": reason.value, "error": error[:2000]})
    end_session(tx, session.id, SessionState.FAILED, reason)


def is_provider_error(msg: ActorCrashed) -> bool:
    """True if the run failed with a :class:`ProviderError` (back-pressure's, not a crash)."""
    return isinstance(msg.error, ProviderError)


def apply_provider_error(
    store: Store, limits: Limits, pressure: Backpressure, now: float, msg: ActorCrashed,
) -> CommitSummary | None:
    """Write the outcome of a provider's failure (see the module docstring) and update
    ``pressure`` (the scheduler's, on the scheduler's thread) once it committed. Returns
    the commit's summary for the scheduler to apply, or None if the job was cancelled
    or superseded while it failed."""
    err = msg.error
    assert isinstance(err, ProviderError)
    policy = limits.backpressure
    reason = err.reason if isinstance(err.reason, Reason) else Reason.PROVIDER_SERVER_ERROR
    applied = None
    with store.transaction() as tx:
        job = tx.job(msg.job_id)
        if job.state != JobState.RUNNING or job.attempt != msg.attempt:
            pressure.forget_run(msg.job_id)
            return None
        session = tx.session(msg.session_id)
        if not err.retryable:
            _fail(tx, session, job, reason, exception_text(err))
            pressure.forget_run(job.id)
        else:
            cooldown = decide_cooldown(pressure.of(job.provider), now, err.retry_after, policy)
            failures = pressure.run_failures.get(job.id, 0) + 1
            tx.event("FR-EVT-SESS-SCHED-COOLDOWN", session.id, job.id, {
                "provider": job.provider, "reason": reason.value, "status": err.status,
                "retry_after": err.retry_after, "delay": cooldown.delay,
                "until": cooldown.until, "concurrency": max(1, int(cooldown.window)),
                "run_failures": failures,
            })
            if decide_retry(failures, policy):
                attempt = job.attempt + 1
                tx.set_job(job.id, JobState.QUEUED, attempt=attempt, not_before=cooldown.until)
                tx.event("FR-EVT-SESS-SCHED-RETRIED", session.id, job.id, {
                    "attempt": attempt, "delay": cooldown.delay,
                    "reason": Reason.PROVIDER_COOLDOWN.value})
                if session.state == SessionState.RUNNING:
                    tx.set_state(session.id, SessionState.QUEUED, reason)
            else:
                _fail(tx, session, job, Reason.PROVIDER_RETRIES_EXHAUSTED,
                      f"{failures} retryable failures; last: {exception_text(err)}")
            applied = (job.provider, job.id, cooldown)
        summary = tx.summary
    if applied is not None:  # only once the outcome is committed
        pressure.failed(*applied, now=now)
    return summary
