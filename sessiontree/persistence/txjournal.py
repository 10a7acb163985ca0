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
from sessiontree.persistence.txbase import TxBase, span_id


class JournalTx(TxBase):
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
        return convert.tool_call(SimpleNamespace(**fields))

    def tool_call(self, call_id: str) -> ToolCallRecord:
        row = self._get("tool_call", "id", call_id)
        if row is None:
            raise StoreError(f"unknown tool call {call_id}", call_id=call_id)
        return convert.tool_call(row)

    def set_tool_call(self, call_id: str, state: ToolCallState, **fields: Any) -> None:
        """Move a tool call along the journal's state machine
        (:data:`~sessiontree._states.CALL_TRANSITIONS`)."""
        cur = self._exec('SELECT "state" FROM "tool_call" WHERE "id" = ?', (call_id,)).fetchone()
        if cur is None:
            raise StoreError(f"unknown tool call {call_id}", call_id=call_id)
        dst = check_call_transition(call_id, cur[0], str(state))
        fields["state"] = dst.value
        if dst.ended:
            fields["finished_at"] = self.now
        self._update("tool_call", fields, "id", call_id)

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
