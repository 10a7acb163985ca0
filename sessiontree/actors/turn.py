"""One model_run: build the context, call the provider, store the reply, run the tool
calls it asked for through the Tool Gate, store their results.

Every step commits with its checkpoint, and every commit is fenced on the job's attempt,
so a cancelled or superseded run can never write after the fact. A run that starts with
open tool calls in its checkpoint (a resume) finishes those instead of calling the
provider again. Each tool call is journaled: intent before it runs, result after.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from sessiontree.actors.context import RuntimeContext
from sessiontree.actors.journal import write_tool_result
from sessiontree.cancellation import CancelToken
from sessiontree.persistence.records import SessionRecord, ToolCallRecord
from sessiontree.persistence.tx import JobFenced, Tx
from sessiontree.providers.base import (
    ModelMessage,
    ModelReply,
    ModelRequest,
    ProviderError,
    ToolCall,
)
from sessiontree.reasons import Reason
from sessiontree.states import SessionState
from sessiontree.tools.builtin import WaitForChildren
from sessiontree.tools.registry import EffectClass, ToolContext, ToolError

WAITING = "waiting"
HELD = "awaiting_operator"


def _to_model_message(body: dict[str, Any], trust: str) -> ModelMessage:
    calls = tuple(
        ToolCall(id=c["id"], name=c["name"], arguments=c["arguments"])
        for c in body.get("tool_calls", ())
    )
    return ModelMessage(
        role=body["role"],
        content=body.get("content", ""),
        tool_calls=calls,
        tool_call_id=body.get("tool_call_id"),
        name=body.get("name"),
        trust="untrusted" if trust == "untrusted" else "trusted",
    )


class ModelTurn:
    def __init__(
        self, ctx: RuntimeContext, job_id: str, attempt: int, session_id: str, token: CancelToken
    ) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self.job_id = job_id
        self.attempt = attempt
        self.sid = session_id
        self.token = token

    def run(self) -> str:
        checkpoint = self.store.checkpoint(self.sid)
        if checkpoint.open_tool_calls:
            return self._run_calls(list(checkpoint.open_tool_calls), checkpoint.awaited_children)
        session = self.store.session(self.sid)
        reply = self._call_provider(session)
        calls = self._commit_reply(reply)
        if not calls:
            return "completed"
        return self._run_calls(calls, ())

    # -- provider ---------------------------------------------------------------------
    def _call_provider(self, session: SessionRecord) -> ModelReply:
        provider = self.ctx.providers.get(session.provider)
        if provider is None:
            raise ProviderError(f"provider {session.provider!r} is not registered")
        request = ModelRequest(
            session_id=self.sid,
            role=session.role,
            model=session.model,
            messages=tuple(
                _to_model_message(m.body, m.trust) for m in self.store.messages(self.sid)
            ),
            tools=tuple(t.spec() for t in self.ctx.gate.visible_tools(session)),
            max_output_tokens=self.ctx.limits.reserve_tokens or None,
            attempt=self.attempt,
        )
        self.ctx.fault("provider.before", session_id=self.sid, attempt=self.attempt)
        started = time.monotonic()
        reply = provider.complete(request, self.token)
        if not isinstance(reply, ModelReply):
            raise ProviderError(f"provider {provider.name!r} returned {type(reply).__name__}")
        usage = reply.usage.model_copy(
            update={"model_runs": 1, "wall_time": time.monotonic() - started}
        )
        reply = reply.model_copy(update={"usage": usage})
        if self.token.cancelled:  # the late reply is discarded; only its cost is recorded
            self._charge_only(reply)
            self.token.raise_if_cancelled()
        try:
            self.ctx.fault("provider.after", session_id=self.sid, attempt=self.attempt)
        except BaseException:
            self._charge_only(reply)  # the reply is lost with the crash; its cost is not
            raise
        return reply

    def _charge_only(self, reply: ModelReply) -> None:
        with self.store.transaction() as tx:
            tx.charge(self.sid, reply.usage)

    def _commit_reply(self, reply: ModelReply) -> list[str]:
        ids = [f"tc_{uuid.uuid4().hex[:20]}" for _ in reply.tool_calls]
        try:
            with self.store.transaction() as tx:
                tx.fence(self.job_id, self.attempt)
                body = {
                    "role": "assistant",
                    "content": reply.content,
                    "tool_calls": [
                        {"id": cid, "name": c.name, "arguments": c.arguments, "provider_id": c.id}
                        for cid, c in zip(ids, reply.tool_calls, strict=True)
                    ],
                }
                message = tx.add_message(
                    self.sid, "assistant", body,
                    provenance={"job_id": self.job_id, "attempt": self.attempt},
                )
                tx.charge(self.sid, reply.usage)
                for i, (cid, c) in enumerate(zip(ids, reply.tool_calls, strict=True)):
                    t = self.ctx.tools.get(c.name)
                    tx.add_tool_call(
                        call_id=cid, session_id=self.sid, job_id=self.job_id,
                        message_seq=message.seq, idx=i, tool=c.name, args=c.arguments,
                        effect=t.effect.value if t else "unknown",
                    )
                if ids:
                    tx.checkpoint(self.sid, open_tool_calls=ids, awaited_children=(),
                                  job_id=self.job_id, attempt=self.attempt)
                else:
                    self._job_done(tx, "completed")
                    tx.set_state(self.sid, SessionState.COMPLETED, Reason.COMPLETED.value,
                                 summary={"summary": reply.content})
                    tx.checkpoint(self.sid, open_tool_calls=(), awaited_children=(),
                                  job_id=self.job_id, attempt=self.attempt)
        except JobFenced:
            self._charge_only(reply)
            raise
        return ids

    # -- tool calls -------------------------------------------------------------------
    def _run_calls(self, ids: list[str], awaited: tuple[str, ...]) -> str:
        records = {r.id: r for r in self.store.tool_calls(ids=ids)}
        answered = self._answered(ids, records)
        pending = [cid for cid in ids if cid not in answered]
        if not pending:
            with self.store.transaction() as tx:
                tx.fence(self.job_id, self.attempt)
                self._next_turn(tx)
            return "tools_done"
        for i, cid in enumerate(pending):
            outcome = self._run_call(records[cid], pending[i + 1 :], awaited)
            if outcome in (WAITING, HELD):
                return outcome
        return "tools_done"

    def _answered(self, ids: list[str], records: dict[str, ToolCallRecord]) -> set[str]:
        """The calls whose result is in the history. A call can be done in the journal
        and not in the history: its run was fenced (e.g. restarted) after the tool ran."""
        ended = {cid for cid in ids if records[cid].state in ("done", "failed")}
        if not ended:
            return set()
        return ended & {m.body.get("tool_call_id") for m in self.store.messages(self.sid)
                        if m.role == "tool"}

    def _run_call(self, rec: ToolCallRecord, remaining: list[str], awaited: tuple[str, ...]) -> str:
        if rec.state in ("done", "failed") and rec.result_hash:
            # The tool ran; only its result missed the history. Never run it again.
            kept = self.store.artifact_json(rec.result_hash)
            self._commit_result(rec, bool(kept["ok"]), kept["value"], remaining,
                                reason=kept.get("reason"))
            return "done"
        if rec.state == "intent" and rec.effect == EffectClass.SIDE_EFFECTING.value:
            return self._hold_for_operator(rec, remaining)
        if rec.state == "waiting":
            return self._wait(rec, tuple(awaited), remaining)
        session = self.store.session(self.sid)
        arguments = self.store.artifact_json(rec.args_hash)
        decision = self.ctx.gate.decide(session, ToolCall(id=rec.id, name=rec.tool,
                                                          arguments=arguments))
        if not decision.allowed or decision.tool is None or decision.args is None:
            reason = decision.reason or Reason.CAPABILITY_DENIED
            self._commit_result(rec, False, {"error": decision.message, "reason": reason.value},
                                remaining, reason=reason.value)
            return "denied"
        tool = decision.tool
        with self.store.transaction() as tx:
            tx.fence(self.job_id, self.attempt)
            # Last chance to stop: once the intent commits, the tool runs, so a cancelled
            # run never leaves an intent for a call that did not start.
            self.token.raise_if_cancelled()
            tx.set_tool_call(rec.id, "intent", attempts=rec.attempts + 1, job_id=self.job_id)
            tx.event("FR-EVT-SESS-TOOL-INTENT", self.sid, self.job_id, {
                "call_id": rec.id, "tool": rec.tool, "effect": tool.effect.value,
                "idempotency_key": rec.idempotency_key, "attempt": rec.attempts + 1,
            })
        self.ctx.fault("tool.before", session_id=self.sid, tool=rec.tool, call_id=rec.id)
        context = ToolContext(
            session_id=self.sid, call_id=rec.id, idempotency_key=rec.idempotency_key,
            attempt=rec.attempts + 1, role=session.role, depth=session.depth,
            workspace=Path(session.workspace) if session.workspace else None,
            cancel=self.token, services=self.ctx.spawn_port,
        )
        ok = True
        try:
            value = tool.fn(context, decision.args)
        except ToolError as exc:
            ok = False
            value = {"error": str(exc), "reason": str(exc.reason or Reason.TOOL_ERROR)}
        self.ctx.fault("tool.after", session_id=self.sid, tool=rec.tool, call_id=rec.id)
        if isinstance(value, WaitForChildren):
            return self._wait(rec, value.children, remaining, explicit=value.children is not None)
        self._commit_result(rec, ok, value, remaining,
                            reason=None if ok else Reason.TOOL_ERROR.value)
        return "done"

    def _result_in(
        self, tx: Tx, rec: ToolCallRecord, ok: bool, value: Any, remaining: list[str],
        reason: str | None = None, *, provenance: str = "tool",
    ) -> None:
        write_tool_result(tx, rec, ok, value, job_id=self.job_id, reason=reason,
                          source=provenance)
        if remaining:
            tx.checkpoint(self.sid, open_tool_calls=remaining, awaited_children=(),
                          job_id=self.job_id, attempt=self.attempt)
        else:
            self._next_turn(tx)

    def _commit_result(
        self, rec: ToolCallRecord, ok: bool, value: Any, remaining: list[str],
        reason: str | None = None,
    ) -> None:
        try:
            with self.store.transaction() as tx:
                tx.fence(self.job_id, self.attempt)
                self._result_in(tx, rec, ok, value, remaining, reason)
        except JobFenced:
            # The run was cancelled while the tool ran: the journal still records what
            # happened in the world; the session's history does not move on.
            with self.store.transaction() as tx:
                digest = tx.put({"call_id": rec.id, "ok": ok, "value": value, "reason": reason})
                tx.set_tool_call(rec.id, "done" if ok else "failed", result_hash=digest)
            raise

    def _job_done(self, tx: Tx, outcome: str) -> None:
        tx.set_job(self.job_id, "completed")
        tx.event("FR-EVT-SESS-SCHED-COMPLETED", self.sid, self.job_id,
                 {"attempt": self.attempt, "outcome": outcome})

    def _next_turn(self, tx: Tx) -> None:
        """All tool calls of the turn have results: queue the session's next model_run."""
        self._job_done(tx, "tools_done")
        tx.set_state(self.sid, SessionState.QUEUED, "next_turn")
        tx.checkpoint(self.sid, open_tool_calls=(), awaited_children=(),
                      job_id=self.job_id, attempt=self.attempt)
        tx.enqueue(self.sid)

    # -- waiting for children and operator holds ---------------------------------------
    def _wait(
        self, rec: ToolCallRecord, children: tuple[str, ...] | None, remaining: list[str],
        *, explicit: bool = False,
    ) -> str:
        with self.store.transaction() as tx:
            tx.fence(self.job_id, self.attempt)
            m = tx.m
            mine = [r.id for r in m.session.select(m.session.id).where(
                m.session.parent_id == self.sid).order_by(m.session.spawn_index)]
            if rec.state == "waiting" and children:
                awaited = list(children)
            elif explicit and children is not None:
                unknown = sorted(set(children) - set(mine))
                if unknown:
                    self._result_in(tx, rec, False, {
                        "error": f"not children of this session: {', '.join(unknown)}",
                        "reason": Reason.INVALID_ARGS.value}, remaining, Reason.INVALID_ARGS.value)
                    return "denied"
                awaited = list(children)
            else:
                consumed = {r.sender_id for r in m.mailbox.select(m.mailbox.sender_id).where(
                    (m.mailbox.session_id == self.sid) & m.mailbox.consumed_at.is_null(False))}
                awaited = [c for c in mine if c not in consumed]
            if set(awaited) <= tx.announced_children(self.sid):
                rows = m.mailbox.select().where(
                    (m.mailbox.session_id == self.sid) & (m.mailbox.sender_id.in_(awaited)))
                by_sender = {r.sender_id: tx.artifact_json(r.body_hash) for r in rows}
                results = []
                for child in awaited:
                    body = by_sender[child]
                    summary = tx.artifact_json(body["summary_hash"]) if body.get(
                        "summary_hash") else {}
                    results.append({"child_id": child, "status": body["status"],
                                    "reason": body.get("reason"),
                                    "summary": summary.get("summary", ""),
                                    "usage": body.get("usage", {})})
                tx.consume(self.sid, awaited)
                self._result_in(tx, rec, True, {"children": results}, remaining)
                return "done"
            tx.set_tool_call(rec.id, "waiting", job_id=self.job_id)
            self._job_done(tx, WAITING)
            tx.set_state(self.sid, SessionState.WAITING, "children")
            tx.checkpoint(self.sid, open_tool_calls=[rec.id, *remaining], awaited_children=awaited,
                          job_id=self.job_id, attempt=self.attempt)
        return WAITING

    def _hold_for_operator(self, rec: ToolCallRecord, remaining: list[str]) -> str:
        """A side-effecting call was cut off between intent and result: never guess."""
        with self.store.transaction() as tx:
            tx.fence(self.job_id, self.attempt)
            tx.event("FR-EVT-SESS-TOOL-UNKNOWN-SIDE-EFFECT", self.sid, self.job_id,
                     {"call_id": rec.id, "tool": rec.tool})
            tx.set_job(self.job_id, "failed", reason=Reason.UNKNOWN_SIDE_EFFECT.value)
            tx.event("FR-EVT-SESS-SCHED-FAILED", self.sid, self.job_id, {
                "attempt": self.attempt, "reason": Reason.UNKNOWN_SIDE_EFFECT.value,
                "error": f"tool call {rec.id} ({rec.tool}) has an intent and no result"})
            tx.set_state(self.sid, SessionState.AWAITING_OPERATOR,
                         Reason.UNKNOWN_SIDE_EFFECT.value)
            tx.checkpoint(self.sid, open_tool_calls=[rec.id, *remaining], awaited_children=(),
                          job_id=self.job_id, attempt=self.attempt)
        return HELD
