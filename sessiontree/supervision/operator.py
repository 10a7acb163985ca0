"""Operator decisions: resolve a side-effecting call that was cut off; retry a failed
session.

Recovery never guesses whether a side effect happened. The session waits in
``awaiting_operator`` until an operator says the call is ``done`` (it happened; an
optional ``result`` is what the model will see) or ``failed`` (it did not); then the
session is queued again and resumes from its checkpoint. A ``failed`` session stays
failed until an operator retries it (:func:`retry_session`).
"""

from __future__ import annotations

from typing import Any

from sessiontree._budget import Usage
from sessiontree._errors import IllegalTransition, InvalidInput, StoreError
from sessiontree._reasons import Reason
from sessiontree._states import SessionState, ToolCallState
from sessiontree.actors.journal import write_tool_result
from sessiontree.persistence.records import SessionRecord
from sessiontree.persistence.store import Store
from sessiontree.persistence.tx import Tx


def resolve_call(store: Store, call_id: str, outcome: str, result: Any = None) -> str:
    """Record the operator's decision; return the session id now queued again."""
    if outcome not in ("done", "failed"):
        raise InvalidInput("outcome must be 'done' or 'failed'", outcome=outcome)
    with store.transaction() as tx:
        try:
            rec = tx.tool_call(call_id)
        except StoreError:
            raise InvalidInput(f"unknown tool call {call_id!r}", call_id=call_id) from None
        session = tx.session(rec.session_id)
        if rec.state != ToolCallState.INTENT or session.state != SessionState.AWAITING_OPERATOR.value:
            raise InvalidInput(
                f"call {call_id} is {rec.state} in a {session.state} session; only a call "
                "with an intent and no result, in a session awaiting an operator, is resolved",
                call_id=call_id,
            )
        ok = outcome == "done"
        value = result if result is not None else {"operator": outcome}
        if result is None and not ok:
            # The model must see an error (a ToolError's shape): the stored ``ok`` flag
            # never reaches the provider.
            value = {"error": f"the operator marked call {call_id} as failed",
                     "reason": "operator_failed"}
        write_tool_result(tx, rec, ok, value, job_id=None, source="operator",
                          reason=None if ok else "operator_failed")
        tx.event("FR-EVT-SESS-TOOL-RESOLVED", session.id, None,
                 {"call_id": call_id, "outcome": outcome, "by": "operator"})
        remaining = [c for c in tx.latest_checkpoint(session.id).open_tool_calls if c != call_id]
        tx.set_state(session.id, SessionState.QUEUED, Reason.RESOLVED)
        tx.checkpoint(session.id, open_tool_calls=remaining, awaited_children=(), job_id=None,
                      attempt=0)
        tx.enqueue(session.id)
        return session.id


def retry_session(store: Store, session_id: str, note: str | None = None) -> str:
    """An operator's retry of a ``failed`` session: a new attempt from its latest
    checkpoint (``FR-EVT-SESS-RETRIED``). Returns the new job's id.

    The session moves ``failed -> queued`` (reason ``retried``), its restart log is
    cleared, and a new model_run is queued (its attempt numbers go on from the last
    one). A child is retried only while its parent is live: its budget is carved from
    the parent again (what it spent stays spent; a retry is never given more budget)
    and its announce-back is withdrawn if the parent has not read it yet -- the parent,
    still waiting, is told again when the child ends again. A parent that already read
    it is not told twice. Raises :class:`IllegalTransition` for a session that is not
    ``failed``, :class:`InvalidInput` when its parent has ended or cannot carve its
    budget again.
    """
    if note is not None and not isinstance(note, str):
        raise InvalidInput("note must be a str")
    with store.transaction() as tx:
        session = tx.session(session_id)
        failed_reason = session.state_reason
        told_again: bool | None = None
        if session.parent_id is not None:
            told_again = _take_back_announce(tx, session)
        tx.reopen(session_id)
        last = max((j.attempt for j in tx.jobs_of(session_id)), default=0)
        job = tx.enqueue(session_id, attempt=last + 1)
        tx.event("FR-EVT-SESS-RETRIED", session_id, job.id, {
            "job_id": job.id, "attempt": job.attempt, "failed_reason": failed_reason,
            "checkpoint_seq": session.checkpoint_seq, "parent_told_again": told_again,
            "note": note})
        return job.id


def _take_back_announce(tx: Tx, child: SessionRecord) -> bool:
    """Undo the roll-up of the child's end into its parent (carve its budget again) and
    withdraw its announce-back unless the parent already read it. Returns whether the
    parent will be told again."""
    if child.state != SessionState.FAILED.value:
        raise IllegalTransition(child.id, child.state, SessionState.QUEUED.value)
    assert child.parent_id is not None
    parent = tx.session(child.parent_id)
    if SessionState(parent.state).terminal:
        raise InvalidInput(f"the parent of {child.id} has ended ({parent.state}): retry it "
                           "from a live parent, or retry the parent", session_id=child.id)
    posts = tx.posts_from(parent.id, [child.id])
    rolled_up = Usage(**posts[child.id]["usage"]) if child.id in posts else Usage()
    spent = parent.children_spent.model_dump()
    for key, value in rolled_up.model_dump().items():
        spent[key] = max(type(value)(0), spent[key] - value)
    carved = parent.carved + child.budget.as_usage()
    tx.update_session(parent.id, children_spent=Usage(**spent), carved=carved)
    left = tx.session(parent.id).available()
    short = [name for name in ("tokens", "cost", "model_runs")
             if getattr(left, name) is not None and getattr(left, name) < 0]
    if short:
        raise InvalidInput(f"the parent of {child.id} cannot carve its budget again "
                           f"(short of {', '.join(short)})", reason=Reason.BUDGET,
                           session_id=child.id)
    unread = child.id not in tx.consumed_senders(parent.id)
    if unread:
        tx.withdraw_post(parent.id, "announce_back", child.id)
        tx.update_session(child.id, announced=False)
    return unread
