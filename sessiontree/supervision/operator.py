"""Operator decisions: resolve a side-effecting call that was cut off.

Recovery never guesses whether a side effect happened. The session waits in
``awaiting_operator`` until an operator says the call is ``done`` (it happened; an
optional ``result`` is what the model will see) or ``failed`` (it did not); then the
session is queued again and resumes from its checkpoint.
"""

from __future__ import annotations

from typing import Any

from sessiontree._errors import InvalidInput, StoreError
from sessiontree._reasons import Reason
from sessiontree._states import SessionState, ToolCallState
from sessiontree.actors.journal import write_tool_result
from sessiontree.persistence.store import Store


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
