"""The two ways a model_run stops short of its end: waiting for children to announce
back, and holding a cut-off side-effecting call for the operator."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sessiontree._reasons import Reason
from sessiontree._states import JobState, SessionState, ToolCallState
from sessiontree.persistence.records import ToolCallRecord

if TYPE_CHECKING:
    from sessiontree.actors.turn import ModelTurn, PendingCall

WAITING = "waiting"
HELD = "awaiting_operator"


def wait_for_children(
    turn: ModelTurn, rec: ToolCallRecord, children: tuple[str, ...] | None,
    rest: list[PendingCall], *, explicit: bool = False,
) -> str:
    """Answer ``wait_for_children`` now if every awaited child has announced back;
    otherwise passivate the session as ``waiting`` until the last one does."""
    sid = turn.sid
    remaining = [c.rec.id for c in rest]
    with turn.store.transaction() as tx:
        tx.fence(turn.job_id, turn.attempt)
        mine = tx.child_ids(sid)
        if rec.state == ToolCallState.WAITING and children:
            awaited = list(children)
        elif explicit and children is not None:
            unknown = sorted(set(children) - set(mine))
            if unknown:
                turn.result_in(tx, rec, False, {
                    "error": f"not children of this session: {', '.join(unknown)}",
                    "reason": Reason.INVALID_ARGS.value}, rest, Reason.INVALID_ARGS.value)
                return "denied"
            awaited = list(children)
        else:
            consumed = tx.consumed_senders(sid)
            awaited = [c for c in mine if c not in consumed]
        if set(awaited) <= tx.announced_children(sid):
            by_sender = tx.posts_from(sid, awaited)
            results = []
            for child in awaited:
                body = by_sender[child]
                summary = tx.artifact_json(body["summary_hash"]) if body.get(
                    "summary_hash") else {}
                results.append({"child_id": child, "status": body["status"],
                                "reason": body.get("reason"),
                                "summary": summary.get("summary", ""),
                                "usage": body.get("usage", {})})
            tx.consume(sid, awaited)
            turn.result_in(tx, rec, True, {"children": results}, rest,
                           provenance="announce_back", children=awaited)
            return "done"
        tx.set_tool_call(rec.id, ToolCallState.WAITING, job_id=turn.job_id)
        turn.job_done(tx, WAITING)
        tx.set_state(sid, SessionState.WAITING, Reason.CHILDREN)
        tx.checkpoint(sid, open_tool_calls=[rec.id, *remaining], awaited_children=awaited,
                      job_id=turn.job_id, attempt=turn.attempt)
    return WAITING


def hold_for_operator(turn: ModelTurn, rec: ToolCallRecord, remaining: list[str]) -> str:
    """A side-effecting call was cut off between intent and result: never guess."""
    sid = turn.sid
    with turn.store.transaction() as tx:
        tx.fence(turn.job_id, turn.attempt)
        tx.event("FR-EVT-SESS-TOOL-UNKNOWN-SIDE-EFFECT", sid, turn.job_id,
                 {"call_id": rec.id, "tool": rec.tool})
        tx.set_job(turn.job_id, JobState.FAILED, reason=Reason.UNKNOWN_SIDE_EFFECT.value)
        tx.event("FR-EVT-SESS-SCHED-FAILED", sid, turn.job_id, {
            "attempt": turn.attempt, "reason": Reason.UNKNOWN_SIDE_EFFECT.value,
            "error": f"tool call {rec.id} ({rec.tool}) has an intent and no result"})
        tx.set_state(sid, SessionState.AWAITING_OPERATOR, Reason.UNKNOWN_SIDE_EFFECT)
        tx.checkpoint(sid, open_tool_calls=[rec.id, *remaining], awaited_children=(),
                      job_id=turn.job_id, attempt=turn.attempt)
    return HELD
