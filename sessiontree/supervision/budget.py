"""The budget check of a dispatch: a run starts only if what it reserves fits what its
session has left. Otherwise, in the dispatch commit, the job fails and the session ends
``failed`` / ``budget_exceeded`` (so no provider call is made that the budget cannot
pay for)."""

from __future__ import annotations

from typing import Any

from sessiontree._budget import Usage
from sessiontree._reasons import Reason
from sessiontree._states import JobState, SessionState
from sessiontree.actors.ending import end_session
from sessiontree.persistence.tx import Tx


def admit(tx: Tx, session: Any, job_id: str, attempt: int, reservation: Usage) -> bool:
    """True if ``reservation`` fits ``session``'s budget; else fail the run (above)."""
    dimension = session.available().exhausted_dimension(reservation)
    if dimension is None:
        return True
    tx.event("FR-EVT-SESS-BUDGET-EXCEEDED", session.id, job_id,
             {"dimension": dimension,
              "budget": session.budget.model_dump(mode="json"),
              "spent": session.spent.model_dump(mode="json")})
    tx.set_job(job_id, JobState.FAILED, reason=Reason.BUDGET_EXCEEDED.value)
    tx.event("FR-EVT-SESS-SCHED-FAILED", session.id, job_id,
             {"attempt": attempt, "reason": Reason.BUDGET_EXCEEDED.value})
    end_session(tx, session.id, SessionState.FAILED, Reason.BUDGET_EXCEEDED)
    return False
