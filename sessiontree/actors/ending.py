"""Ending a session: one named step, applied in the transaction that ends it.

:func:`end_session` is the only way a session reaches a terminal state. In the same
transaction, and in this order:

1. the session's row moves to its terminal state (``Tx.mark_ended``);
2. its live children end ``cancelled`` / ``parent_ended`` (each through this same step,
   in reverse spawn order), so no orphan keeps spending;
3. its queued and running jobs are cancelled in the store (a running attempt is fenced:
   its actor's next commit is refused and its late result discarded);
4. its spend rolls up to its parent and its unused carve returns to it;
5. its parent's persisted mailbox gets exactly one ``SessionAnnounceBack`` (a unique
   index makes a second one impossible);
6. if it was a *significant* child and its parent's ``auto_shutdown`` says so
   (:func:`auto_shutdown_due`), the parent ends too, through this same step;
   otherwise a parent waiting for exactly these children is queued again;
7. its workspace path leases are freed (``persistence.workspace``).

The session's own row moves first, so that none of its children's announce-backs can
wake it; then its children end youngest first (reverse start order, as OTP terminates
a supervisor's children).

**Auto-shutdown** (OTP 24's ``auto_shutdown``): a parent created or spawned with
``auto_shutdown="any_significant"`` ends when any child spawned ``significant=True``
ends on its own (``completed`` or ``failed``); with ``"all_significant"``, when the last
live significant child does. A child *cancelled* (by the host, an operator or a
sibling's strategy) does not trigger it. The parent ends like the child that triggered
it: ``completed`` with that child's answer as its summary, or ``failed``; the reason is
``auto_shutdown`` either way (OTP has one exit reason, ``shutdown``: we keep whether the
essential work succeeded). A parent held for a person (paused, awaiting an operator or
consent) ends ``cancelled`` / ``auto_shutdown`` instead.

It lives with the actors, above ``persistence``: it is supervision's policy written
through persistence verbs, not a cascade hidden in a setter.
"""

from __future__ import annotations

from typing import Any

from sessiontree._budget import Usage
from sessiontree._messages import SessionAnnounceBack
from sessiontree._reasons import Reason
from sessiontree._states import JobState, SessionState
from sessiontree.persistence import workspace
from sessiontree.persistence.tx import Tx


def end_session(
    tx: Tx, session_id: str, state: SessionState, reason: Reason | str | None,
    *, summary: Any = None, note: str | None = None,
) -> None:
    """End ``session_id`` in ``state`` (terminal) with ``reason``; see the module docstring.

    Raises :class:`~sessiontree._errors.IllegalTransition` if the session already ended.
    """
    ended = tx.mark_ended(session_id, state, reason, summary, note=note)
    children = tx.live_children(ended.id) if ended.spawn_count else []  # none spawned: no read
    for child_id in reversed(children):
        end_session(tx, child_id, SessionState.CANCELLED, Reason.PARENT_ENDED)
    why = ended.state_reason or ended.state
    for job in tx.live_jobs(ended.id):
        tx.set_job(job.id, JobState.CANCELLED, reason=why)
        tx.event("FR-EVT-SESS-SCHED-CANCELLED", ended.id, job.id, {
            "attempt": job.attempt, "reason": why,
            "was_running": job.state == JobState.RUNNING,
        })
    workspace.release_session(tx, ended.id, reason=f"session_{ended.state}")
    if ended.parent_id is not None:
        _announce(tx, tx.session(ended.id))  # re-read: the children's roll-ups changed it


def _announce(tx: Tx, ended: Any) -> None:
    parent = tx.session(ended.parent_id)
    # Conservative: budget still carved to children being cancelled counts as spent.
    subtree = ended.usage + ended.children_spent + ended.carved
    carved = parent.carved.model_dump()
    for key, value in ended.budget.as_usage().model_dump().items():
        carved[key] = max(0, carved[key] - value) if isinstance(value, int) else max(
            0.0, carved[key] - value
        )
    tx.update_session(
        parent.id, carved=Usage(**carved), children_spent=parent.children_spent + subtree
    )
    announce = SessionAnnounceBack(
        child_id=ended.id,
        parent_id=parent.id,
        status=ended.state,
        reason=ended.state_reason,
        summary_hash=ended.summary_hash,
        usage=subtree,
    )
    if not tx.post(parent.id, "announce_back", ended.id, announce.model_dump(mode="json")):
        return
    tx.update_session(ended.id, announced=True)
    tx.event("FR-EVT-SESS-SPAWN-ANNOUNCED", ended.id, None, {
        "parent_id": parent.id,
        "child_id": ended.id,
        "status": ended.state,
        "reason": ended.state_reason,
        "summary_hash": ended.summary_hash,
        "usage": subtree.model_dump(mode="json"),
    })
    if _auto_shutdown(tx, parent, ended):  # (announced changed, nothing it reads)
        return
    if parent.state == SessionState.WAITING.value:
        awaited = set(tx.latest_checkpoint(parent.id).awaited_children)
        if awaited and awaited <= tx.announced_children(parent.id):
            tx.set_state(parent.id, SessionState.QUEUED, Reason.CHILDREN_ANNOUNCED)
            tx.enqueue(parent.id)


def auto_shutdown_due(
    policy: str, significant: bool, child_state: str, other_live_significant: int
) -> bool:
    """Whether a child's end shuts its parent down (see the module docstring). Pure."""
    if policy == "never" or not significant or child_state == SessionState.CANCELLED.value:
        return False
    return policy == "any_significant" or other_live_significant == 0


_COMPLETABLE = frozenset({SessionState.RUNNING.value, SessionState.QUEUED.value,
                          SessionState.WAITING.value, SessionState.IDLE.value})


def _auto_shutdown(tx: Tx, parent: Any, child: Any) -> bool:
    if SessionState(parent.state).terminal or parent.auto_shutdown == "never":
        return False
    others = sum(1 for s in tx.children_of(parent.id, live_only=True) if s.significant)
    if not auto_shutdown_due(parent.auto_shutdown, child.significant, child.state, others):
        return False
    tx.event("FR-EVT-SESS-AUTO-SHUTDOWN", parent.id, None, {
        "auto_shutdown": parent.auto_shutdown, "child_id": child.id, "child_state": child.state})
    if child.state == SessionState.FAILED.value:
        end_session(tx, parent.id, SessionState.FAILED, Reason.AUTO_SHUTDOWN)
    elif parent.state in _COMPLETABLE:
        summary = tx.artifact_json(child.summary_hash) if child.summary_hash else None
        end_session(tx, parent.id, SessionState.COMPLETED, Reason.AUTO_SHUTDOWN, summary=summary)
    else:
        end_session(tx, parent.id, SessionState.CANCELLED, Reason.AUTO_SHUTDOWN)
    return True
