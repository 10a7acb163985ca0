"""Ending a session: the steps that must commit with its move to a terminal state.

1. its live children are cancelled (reason ``parent_ended``), so no orphan keeps spending;
2. its queued and running jobs are cancelled in the store (a running attempt is fenced:
   its actor's next commit is refused and its late result discarded);
3. its spend rolls up to its parent and its unused carve returns to it;
4. its parent's persisted mailbox gets exactly one ``SessionAnnounceBack`` (a unique
   index makes a second one impossible), and a parent waiting for exactly these
   children is queued again;
5. its workspace path leases are freed (``persistence.workspace``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sessiontree.actors.messages import SessionAnnounceBack
from sessiontree.budget import Usage
from sessiontree.persistence import convert, workspace
from sessiontree.persistence.records import SessionRecord
from sessiontree.reasons import Reason
from sessiontree.states import SessionState

if TYPE_CHECKING:
    from sessiontree.persistence.tx import Tx


def end_session(tx: Tx, ended: SessionRecord) -> None:
    for child_id in tx.live_children(ended.id):
        tx.set_state(child_id, SessionState.CANCELLED, Reason.PARENT_ENDED.value)

    for job in tx.live_jobs(ended.id):
        tx.set_job(job.id, "cancelled", reason=ended.state_reason or ended.state)
        tx.event(
            "FR-EVT-SESS-SCHED-CANCELLED",
            ended.id,
            job.id,
            {
                "attempt": job.attempt,
                "reason": ended.state_reason or ended.state,
                "was_running": job.state == "running",
            },
        )

    workspace.release_session(tx, ended.id, reason=f"session_{ended.state}")

    if ended.parent_id is None:
        return
    ended = tx.session(ended.id)  # children's roll-ups changed it
    parent = tx.session(ended.parent_id) if ended.parent_id else None
    if parent is None:
        return
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
    tx.event(
        "FR-EVT-SESS-SPAWN-ANNOUNCED",
        ended.id,
        None,
        {
            "parent_id": parent.id,
            "child_id": ended.id,
            "status": ended.state,
            "reason": ended.state_reason,
            "summary_hash": ended.summary_hash,
            "usage": subtree.model_dump(mode="json"),
        },
    )
    if parent.state == SessionState.WAITING.value:
        awaited = set(tx.latest_checkpoint(parent.id).awaited_children)
        if awaited and awaited <= tx.announced_children(parent.id):
            tx.set_state(parent.id, SessionState.QUEUED, "children_announced")
            tx.enqueue(parent.id)


__all__ = ["convert", "end_session"]
