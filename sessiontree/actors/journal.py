"""The tool-call journal's result half: one function writes every tool result."""

from __future__ import annotations

from typing import Any

from sessiontree._jsonsafe import result_text
from sessiontree._states import ToolCallState
from sessiontree.persistence.records import MessageRecord, ToolCallRecord
from sessiontree.persistence.tx import Tx


def write_tool_result(
    tx: Tx, rec: ToolCallRecord, ok: bool, value: Any, *, job_id: str | None,
    reason: str | None = None, source: str = "tool", children: list[str] | None = None,
) -> MessageRecord:
    """Store a tool result as the session's next message and close the journal entry.

    Tool output comes from outside the session's instructions, so it is stored with
    ``trust = untrusted`` with its provenance (the source, the tool, the call, and for
    children's announce-backs the children); an operator's resolution is marked by its
    provenance. It reaches the model in the labelled block of ``providers.trust``.
    """
    content = result_text(value)  # valid JSON whatever the tool returned (NaN included)
    message = tx.add_message(
        rec.session_id, "tool",
        {"role": "tool", "tool_call_id": rec.id, "name": rec.tool, "content": content, "ok": ok},
        trust="untrusted",
        provenance={"source": source, "tool": rec.tool, "call_id": rec.id}
        | ({"children": children} if children else {}),
    )
    tx.set_tool_call(rec.id, ToolCallState.DONE if ok else ToolCallState.FAILED,
                     result_hash=message.artifact_hash)
    tx.event("FR-EVT-SESS-TOOL-RESULT", rec.session_id, job_id, {
        "call_id": rec.id, "tool": rec.tool, "ok": ok,
        "result_hash": message.artifact_hash, "reason": reason,
    })
    return message
