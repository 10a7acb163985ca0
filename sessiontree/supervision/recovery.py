"""Process recovery: resume a store left by a dead process.

Runs at :meth:`Runtime.open`, after providers and tools are registered and before the
scheduler dispatches anything. Every job left ``running`` goes back to the queue with
``attempt + 1``; its session resumes from its latest checkpoint when dispatched (a run
with open tool calls finishes those, applying the journal rules, instead of calling
the provider again). Each resumed session gets ``FR-EVT-SESS-RECOVERED``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from sessiontree.persistence.store import Store
from sessiontree.states import SessionState


class RecoveryReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    requeued_jobs: list[str] = []
    resumed_sessions: list[str] = []
    queued_jobs: int = 0
    awaiting_operator: list[str] = []

    @property
    def resumed_anything(self) -> bool:
        return bool(self.resumed_sessions or self.queued_jobs)


def recover(store: Store) -> RecoveryReport:
    requeued: list[str] = []
    resumed: list[str] = []
    with store.transaction() as tx:
        for row in tx.m.job.select().where(tx.m.job.state == "running").order_by(tx.m.job.order):
            session = tx.session(row.session_id)
            checkpoint = tx.latest_checkpoint(session.id)
            attempt = row.attempt + 1
            tx.set_job(row.id, "queued", attempt=attempt, not_before=None)
            if session.state == SessionState.RUNNING.value:
                tx.set_state(session.id, SessionState.QUEUED, "recovered")
            tx.event("FR-EVT-SESS-SCHED-RETRIED", session.id, row.id,
                     {"attempt": attempt, "delay": 0.0, "reason": "recovered"})
            tx.event("FR-EVT-SESS-RECOVERED", session.id, row.id, {
                "from_state": session.state, "attempt": attempt,
                "open_tool_calls": list(checkpoint.open_tool_calls),
            })
            requeued.append(row.id)
            resumed.append(session.id)
        # A session queued or running with no live job cannot happen through our own
        # transactions; if a store says so anyway, give it its run back.
        live = {r.session_id for r in tx.m.job.select(tx.m.job.session_id).where(
            tx.m.job.state.in_(["queued", "running"]))}
        for srow in tx.m.session.select().where(
            tx.m.session.state.in_([SessionState.QUEUED.value, SessionState.RUNNING.value])
        ):
            if srow.id in live:
                continue
            if srow.state == SessionState.RUNNING.value:
                tx.set_state(srow.id, SessionState.QUEUED, "recovered")
            job = tx.enqueue(srow.id)
            tx.event("FR-EVT-SESS-RECOVERED", srow.id, job.id, {
                "from_state": srow.state, "attempt": job.attempt, "open_tool_calls": [],
            })
            resumed.append(srow.id)
    queued = len(store.jobs(states=["queued"]))
    held = [s.id for s in store.sessions(states=[SessionState.AWAITING_OPERATOR.value])]
    return RecoveryReport(
        requeued_jobs=requeued, resumed_sessions=resumed, queued_jobs=queued,
        awaiting_operator=held,
    )
