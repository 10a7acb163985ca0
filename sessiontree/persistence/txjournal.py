"""The journal's and the mailbox's verbs of a write transaction: tool calls (intent
before a tool runs, result after) and the persisted mailbox (announce-backs).

:class:`~sessiontree.persistence.tx.Tx` inherits them; they are apart because they are
one idea -- what crosses a session's boundary -- and ``tx.py`` holds sessions and jobs.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from sessiontree._errors import StoreError
from sessiontree._states import ToolCallState, check_call_transition
from sessiontree.persistence import convert
from sessiontree.persistence.records import ToolCallRecord
from sessiontree.persistence.spans import ERROR, OK, TOOL_CALL, span_id
from sessiontree.persistence.txspans import SpanTx


class JournalTx(SpanTx):
    """Tool-call journal and mailbox verbs (see the module docstring)."""

    # -- tool calls -------------------------------------------------------------------
    def add_tool_call(
        self, *, call_id: str, session_id: str, job_id: str, message_seq: int, idx: int,
        tool: str, args: Any, effect: str,
    ) -> ToolCallRecord:
        args_hash = self.put(args)
        fields = {
            "id": call_id, "session_id": session_id, "job_id": job_id,
            "message_seq": message_seq, "idx": idx, "tool": tool, "args_hash": args_hash,
            "idempotency_key": f"idem_{span_id(session_id + ':' + call_id, 32)}",
            "effect": effect, "state": ToolCallState.PENDING.value, "result_hash": None, "attempts": 0,
            "created_at": self.now,
        }
        self._insert("tool_call", fields)
        self._calls[call_id] = (fields["state"], session_id, job_id, tool, effect, self.now)
        return convert.tool_call(SimpleNamespace(**fields))

    def tool_call(self, call_id: str) -> ToolCallRecord:
        row = self._get("tool_call", "id", call_id)
        if row is None:
            raise StoreError(f"unknown tool call {call_id}", call_id=call_id)
        return convert.tool_call(row)

    def set_tool_call(self, call_id: str, state: ToolCallState, **fields: Any) -> None:
        """Move a tool call along the journal's state machine
        (:data:`~sessiontree._states.CALL_TRANSITIONS`)."""
        head = self._call_head(call_id)
        src, session_id, job_id, tool, effect, created = head
        dst = check_call_transition(call_id, src, str(state))
        fields["state"] = dst.value
        if dst.ended:
            fields["finished_at"] = self.now
        self._update("tool_call", fields, "id", call_id)
        self._calls[call_id] = (dst.value, session_id, fields.get("job_id", job_id), tool,
                                effect, created)
        if dst.ended and not ToolCallState(src).ended:
            self.end_tool_span(call_id, session_id, fields.get("job_id") or job_id, tool, effect,
                               created, OK if dst is ToolCallState.DONE else ERROR)

    def _call_head(self, call_id: str) -> tuple[Any, ...]:
        """(state, session_id, job_id, tool, effect, created_at) of a tool call as of now
        in this transaction: written here, else as the writer's cache last committed it
        (calls not yet ended), else read."""
        head = self._calls.get(call_id)
        if head is None and self._shared is not None:
            head = self._shared.call_head(call_id)
        if head is None:
            head = self._exec('SELECT "state", "session_id", "job_id", "tool", "effect", '
                              '"created_at" FROM "tool_call" WHERE "id" = ?', (call_id,)).fetchone()
            if head is None:
                raise StoreError(f"unknown tool call {call_id}", call_id=call_id)
        return tuple(head)

    def end_tool_span(
        self, call_id: str, session_id: str, job_id: str | None, tool: str, effect: str,
        created: float, status: str, detail: str | None = None,
    ) -> None:
        """Write a tool call's span, whole, when the call ends: from when the model asked
        for it to its result, under the model_run that ran it. (One row a call; a read
        shows a call still running from its journal row: ``recorder.spans``.)"""
        session = self._session_row(session_id)
        if session is None:
            return
        root = session.root_id
        self.open_span(TOOL_CALL, call_id, session_id=session_id, root_id=root,
                       parent=span_id(job_id or session_id, 16), name=tool, job_id=job_id,
                       call_id=call_id, start=created,
                       attributes={"tool": tool, "effect": effect})
        self.close_span(TOOL_CALL, call_id, session_id=session_id, root_id=root, status=status,
                        detail=detail)

    # -- mailbox ----------------------------------------------------------------------
    def post(self, session_id: str, kind: str, sender_id: str, body: dict[str, Any]) -> bool:
        """Post to a session's persisted mailbox; False if this sender already posted."""
        body_hash = self.put(body)
        return bool(self._insert("mailbox", {
            "session_id": session_id, "kind": kind, "sender_id": sender_id,
            "body_hash": body_hash, "created_at": self.now,
        }, ignore=True))

    def withdraw_post(self, session_id: str, kind: str, sender_id: str) -> bool:
        """Take back an unread post (a retried child's announce-back), so that the
        sender may post once more. False if there was none, or it was read."""
        cur = self._exec('DELETE FROM "mailbox" WHERE "session_id" = ? AND "kind" = ? '
                         'AND "sender_id" = ? AND "consumed_at" IS NULL',
                         (session_id, kind, sender_id))
        return bool(cur.rowcount)

    def announced_children(self, session_id: str) -> set[str]:
        cur = self._exec('SELECT "sender_id" FROM "mailbox" WHERE "session_id" = ? AND "kind" = ?',
                         (session_id, "announce_back"))
        return {r[0] for r in cur}

    def consumed_senders(self, session_id: str) -> set[str]:
        """Senders whose posts to this mailbox were already consumed."""
        cur = self._exec('SELECT "sender_id" FROM "mailbox" WHERE "session_id" = ? '
                         'AND "consumed_at" IS NOT NULL', (session_id,))
        return {r[0] for r in cur}

    def posts_from(self, session_id: str, sender_ids: list[str]) -> dict[str, Any]:
        """The bodies (parsed) posted to this mailbox by ``sender_ids``, by sender."""
        marks = ", ".join("?" * len(sender_ids))
        cur = self._exec(f'SELECT "sender_id", "body_hash" FROM "mailbox" WHERE "session_id" = ? '
                         f'AND "sender_id" IN ({marks})', (session_id, *sender_ids))
        return {sender: self.artifact_json(digest) for sender, digest in cur.fetchall()}

    def consume(self, session_id: str, sender_ids: list[str]) -> None:
        self.m.mailbox.update(consumed_at=self.now).where(
            (self.m.mailbox.session_id == session_id)
            & (self.m.mailbox.sender_id.in_(sender_ids))
            & (self.m.mailbox.consumed_at.is_null())
        ).execute()
