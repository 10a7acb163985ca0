"""Process recovery: resume a store left by a dead process.

Runs at :meth:`Runtime.open`, after providers and tools are registered and before the
scheduler dispatches anything. Every job left ``running`` goes back to the queue with
``attempt + 1``; its session resumes from its latest checkpoint when dispatched (a run
with open tool calls finishes those, applying the journal rules, instead of calling
the provider again). Each resumed session gets ``FR-EVT-SESS-RECOVERED``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from sessiontree._reasons import Reason
from sessiontree._states import JobState, SessionState
from sessiontree.persistence.store import Store


class RecoveryReport(BaseModel):
    """What :meth:`Runtime.open` found and did in a store left by a dead process
    (``Runtime.recovery``)."""

    model_config = ConfigDict(frozen=True)

    requeued_jobs: list[str] = []
    resumed_sessions: list[str] = []
    queued_jobs: int = 0
    awaiting_operator: list[str] = []

    @property
    def resumed_anything(self) -> bool:
        """True if any session was resumed or any job is waiting to run."""
        return bool(self.resumed_sessions or self.queued_jobs)


def recover(store: Store) -> RecoveryReport:
    """Re-queue what a dead process left running (see the module docstring)."""
    requeued: list[str] = []
    resumed: list[str] = []
    with store.transaction() as tx:
        for job in tx.jobs_in((JobState.RUNNING,)):
            session = tx.session(job.session_id)
            checkpoint = tx.latest_checkpoint(session.id)
            attempt = job.attempt + 1
            tx.set_job(job.id, JobState.QUEUED, attempt=attempt, not_before=None)
            if session.state == SessionState.RUNNING:
                tx.set_state(session.id, SessionState.QUEUED, Reason.RECOVERED)
            tx.event("FR-EVT-SESS-SCHED-RETRIED", session.id, job.id,
                     {"attempt": attempt, "delay": 0.0, "reason": "recovered"})
            tx.event("FR-EVT-SESS-RECOVERED", session.id, job.id, {
                "from_state": session.state, "attempt": attempt,
                "open_tool_calls": list(checkpoint.open_tool_calls),
            })
            requeued.append(job.id)
            resumed.append(session.id)
        # A session queued or running with no live job cannot happen through our own
        # transactions; if a store says so anyway, give it its run back.
        live = {j.session_id for j in tx.jobs_in((JobState.QUEUED, JobState.RUNNING))}
        for session in tx.sessions_in((SessionState.QUEUED, SessionState.RUNNING)):
            if session.id in live:
                continue
            if session.state == SessionState.RUNNING:
                tx.set_state(session.id, SessionState.QUEUED, Reason.RECOVERED)
            new_job = tx.enqueue(session.id)
            tx.event("FR-EVT-SESS-RECOVERED", session.id, new_job.id, {
                "from_state": session.state, "attempt": new_job.attempt, "open_tool_calls": [],
            })
            resumed.append(session.id)
    queued = len(store.jobs(states=[JobState.QUEUED]))
    held = [s.id for s in store.sessions(states=[SessionState.AWAITING_OPERATOR])]
    return RecoveryReport(
        requeued_jobs=requeued, resumed_sessions=resumed, queued_jobs=queued,
        awaiting_operator=held,
    )
