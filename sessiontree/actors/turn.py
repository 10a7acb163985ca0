"""One model_run: build the context, call the provider, store the reply, run the tool
calls it asked for through the Tool Gate, store their results.

Every step commits with its checkpoint, and every commit is fenced on the job's attempt,
so a cancelled or superseded run can never write after the fact. A run that starts with
open tool calls in its checkpoint (a resume) finishes those instead of calling the
provider again. Each tool call is journaled: intent before it runs, result after. The
intent of a call that is not side-effecting rides in the commit before it (the reply,
or the previous call's result): it still commits before the call runs, one commit
fewer. A side-effecting call's intent commits on its own, just before the call.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pykka

from sessiontree._cancellation import CancelToken
from sessiontree._errors import InvalidInput, StoreError
from sessiontree._ids import new_id
from sessiontree._jsonsafe import jsonable
from sessiontree._reasons import Reason
from sessiontree._safe_text import exception_message, exception_text, exception_type, printable
from sessiontree._states import JobState, SessionState, ToolCallState
from sessiontree.actors.context import RuntimeContext
from sessiontree.actors.conversation import answered
from sessiontree.actors.ending import end_session
from sessiontree.actors.journal import write_tool_result
from sessiontree.actors.reply_guard import storable_reply
from sessiontree.actors.waiting import HELD, WAITING, hold_for_operator, wait_for_children
from sessiontree.persistence import capabilities
from sessiontree.persistence.records import SessionRecord, ToolCallRecord
from sessiontree.persistence.tx import JobFenced, Tx
from sessiontree.providers.base import ModelMessage, ModelReply, ModelRequest, ProviderError, ToolCall
from sessiontree.tools.builtin import WaitForChildren
from sessiontree.tools.gate import GateDecision
from sessiontree.tools.registry import EffectClass, ToolContext, ToolError

__all__ = ["HELD", "WAITING", "ModelTurn", "PendingCall"]

log = logging.getLogger(__name__)

_RUNTIME_FAULTS = (StoreError, JobFenced, pykka.ActorDeadError, pykka.Timeout)
"""Raised inside a tool by the runtime itself (e.g. the spawn tool's ask): crashes."""


@dataclass
class PendingCall:
    """A tool call of this turn still to run, with what is known of it in memory."""

    rec: ToolCallRecord
    arguments: Any
    decision: GateDecision | None = None
    intent_attempt: int = 0  # > 0 once this run committed the call's intent


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
        self.session: SessionRecord | None = None

    def run(self) -> str:
        state = self.ctx.history.load(self.sid)
        self.session = state.session
        if state.checkpoint.open_tool_calls:
            return self._resume_calls(list(state.checkpoint.open_tool_calls),
                                      state.checkpoint.awaited_children)
        reply = self._call_provider(state.session, state.history)
        calls = self._commit_reply(reply)
        if not calls:
            return "completed"
        return self._run_pending(calls, ())

    # -- provider ---------------------------------------------------------------------
    def _call_provider(self, session: SessionRecord, history: tuple[ModelMessage, ...]) -> ModelReply:
        provider = self.ctx.providers.get(session.provider)
        if provider is None:
            raise ProviderError(f"provider {session.provider!r} is not registered")
        request = ModelRequest(
            session_id=self.sid,
            role=session.role,
            model=session.model,
            messages=history,
            tools=self.ctx.gate.visible_specs(session),
            max_output_tokens=self.ctx.limits.reserve_tokens or None,
            attempt=self.attempt,
        )
        self.ctx.fault("provider.before", session_id=self.sid, attempt=self.attempt)
        started = time.monotonic()
        reply = provider.complete(request, self.token)
        if not isinstance(reply, ModelReply):
            # A defect in the provider's code, not its answer: a crash, for supervision.
            raise InvalidInput(f"provider {provider.name!r} returned {type(reply).__name__}")
        self.ctx.provider_used(provider.name, self.job_id, reply.usage.tokens)  # back-pressure
        reply = storable_reply(reply)  # a model's mistakes become error results, not crashes
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
            tx.on_job(self.job_id, self.sid, cause=True)  # not fenced: the run is over
            tx.charge(self.sid, reply.usage)

    def _commit_reply(self, reply: ModelReply) -> list[PendingCall]:
        ids = [new_id("tc") for _ in reply.tool_calls]
        pending: list[PendingCall] = []
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
                    rec = tx.add_tool_call(
                        call_id=cid, session_id=self.sid, job_id=self.job_id,
                        message_seq=message.seq, idx=i, tool=printable(c.name), args=c.arguments,
                        effect=t.effect.value if t else "unknown",
                    )
                    pending.append(PendingCall(rec, c.arguments))
                if pending:
                    self._early_intent(tx, pending[0])
                    tx.checkpoint(self.sid, open_tool_calls=ids, awaited_children=(),
                                  job_id=self.job_id, attempt=self.attempt)
                else:
                    self.job_done(tx, "completed")
                    assert self.session is not None
                    if self.session.keep_open:  # conversational: answer, then wait (idle)
                        answered(tx, self.sid, reply.content)
                    else:
                        end_session(tx, self.sid, SessionState.COMPLETED, Reason.COMPLETED,
                                    summary={"summary": reply.content})
                    tx.checkpoint(self.sid, open_tool_calls=(), awaited_children=(),
                                  job_id=self.job_id, attempt=self.attempt)
        except JobFenced:
            self._charge_only(reply)
            raise
        return pending

    # -- tool calls -------------------------------------------------------------------
    def _resume_calls(self, ids: list[str], awaited: tuple[str, ...]) -> str:
        records = {r.id: r for r in self.store.tool_calls(ids=ids)}
        answered = self._answered(ids, records)
        pending = [PendingCall(records[cid], None) for cid in ids if cid not in answered]
        if not pending:
            with self.store.transaction() as tx:
                tx.fence(self.job_id, self.attempt)
                self._next_turn(tx)
            return "tools_done"
        return self._run_pending(pending, awaited)

    def _run_pending(self, pending: list[PendingCall], awaited: tuple[str, ...]) -> str:
        for i, call in enumerate(pending):
            outcome = self._run_call(call, pending[i + 1 :], awaited)
            if outcome in (WAITING, HELD):
                return outcome
        return "tools_done"

    def _answered(self, ids: list[str], records: dict[str, ToolCallRecord]) -> set[str]:
        """The calls whose result is in the history. A call can be done in the journal
        and not in the history: its run was fenced (e.g. restarted) after the tool ran."""
        ended = {cid for cid in ids if ToolCallState(records[cid].state).ended}
        if not ended:
            return set()
        return ended & {m.body.get("tool_call_id") for m in self.store.messages(self.sid)
                        if m.role == "tool"}

    def _decide(self, call: PendingCall) -> GateDecision:
        if call.decision is None:
            rec = call.rec
            if call.arguments is None:
                call.arguments = self.store.artifact_json(rec.args_hash)
            call.decision = self.ctx.gate.decide(
                self.sid, ToolCall(id=rec.id, name=rec.tool, arguments=call.arguments))
        return call.decision

    def _run_call(self, call: PendingCall, rest: list[PendingCall], awaited: tuple[str, ...]) -> str:
        rec = call.rec
        if not call.intent_attempt:
            if ToolCallState(rec.state).ended and rec.result_hash:
                # The tool ran; only its result missed the history. Never run it again.
                kept = self.store.artifact_json(rec.result_hash)
                self._commit_result(call, bool(kept["ok"]), kept["value"], rest,
                                    reason=kept.get("reason"))
                return "done"
            if rec.state == ToolCallState.INTENT and rec.effect == EffectClass.SIDE_EFFECTING.value:
                return hold_for_operator(self, rec, [c.rec.id for c in rest])
            if rec.state == ToolCallState.WAITING:
                return wait_for_children(self, rec, tuple(awaited), rest)
        decision = self._decide(call)
        permit = decision.permit
        if not decision.allowed or permit is None:
            reason = decision.reason or Reason.CAPABILITY_DENIED
            self._commit_result(call, False, {"error": decision.message, "reason": reason.value},
                                rest, reason=reason.value, denied=decision)
            return "denied"
        if not call.intent_attempt:
            with self.store.transaction() as tx:
                tx.fence(self.job_id, self.attempt)
                # Last chance to stop: once the intent commits, the tool runs, so a
                # cancelled run never leaves an intent for a call that did not start.
                self.token.raise_if_cancelled()
                self._write_intent(tx, call)
        self.ctx.fault("tool.before", session_id=self.sid, tool=rec.tool, call_id=rec.id)
        session = self.session
        assert session is not None
        context = ToolContext(
            session_id=self.sid, call_id=rec.id, idempotency_key=rec.idempotency_key,
            attempt=call.intent_attempt, role=session.role, depth=session.depth,
            workspace=Path(session.workspace) if session.workspace else None,
            cancel=self.token, services=self.ctx.spawn_port,
        )
        ok = True
        try:
            value = permit.run(context)  # the gate's permit: the only way a tool runs
        except ToolError as exc:
            ok = False
            value = {"error": exception_message(exc),
                     "reason": printable(str(exc.reason or Reason.TOOL_ERROR))}
            if exc.facts:  # e.g. a workspace conflict's path, holder and lease mode
                value["details"] = exc.facts
        except _RUNTIME_FAULTS:
            raise  # the runtime's own fault met inside the tool: a crash
        except Exception as exc:  # an ordinary exception: a failed call (tools.registry)
            if permit.tool.on_error == "crash":
                raise
            log.info("tool %s failed in session %s: %s", rec.tool, self.sid,
                     exception_text(exc), exc_info=exc)
            ok = False
            value = {"error": exception_text(exc), "error_type": exception_type(exc),
                     "reason": Reason.TOOL_ERROR.value}
        if not isinstance(value, WaitForChildren):
            value = jsonable(value)  # NaN, objects, depth: the model gets valid JSON
        self.ctx.fault("tool.after", session_id=self.sid, tool=rec.tool, call_id=rec.id)
        if isinstance(value, WaitForChildren):
            return wait_for_children(self, rec, value.children, rest,
                                     explicit=value.children is not None)
        self._commit_result(call, ok, value, rest, reason=None if ok else Reason.TOOL_ERROR.value)
        return "done"

    def _write_intent(self, tx: Tx, call: PendingCall) -> None:
        rec, tool = call.rec, call.decision.tool if call.decision else None
        permit = call.decision.permit if call.decision else None
        call.intent_attempt = rec.attempts + 1
        tx.set_tool_call(rec.id, ToolCallState.INTENT, attempts=call.intent_attempt, job_id=self.job_id)
        tx.event("FR-EVT-SESS-TOOL-INTENT", self.sid, self.job_id, {
            "call_id": rec.id, "tool": rec.tool,
            "effect": tool.effect.value if tool else rec.effect,
            "idempotency_key": rec.idempotency_key, "attempt": call.intent_attempt,
            "capability": permit.capability if permit else None,
            "token_ids": list(permit.token_ids) if permit else [],
            "condition": permit.condition if permit else None,
        })

    def _early_intent(self, tx: Tx, call: PendingCall) -> None:
        """Journal the intent of the turn's next call in this commit, when that is safe:
        a fresh call the gate allows and whose tool is not side-effecting."""
        if call.rec.state != ToolCallState.PENDING or self.token.cancelled:
            return
        decision = self._decide(call)
        if decision.allowed and decision.tool is not None and (
                decision.tool.effect != EffectClass.SIDE_EFFECTING):
            self._write_intent(tx, call)

    def result_in(
        self, tx: Tx, rec: ToolCallRecord, ok: bool, value: Any, rest: list[PendingCall],
        reason: str | None = None, *, provenance: str = "tool", children: list[str] | None = None,
    ) -> None:
        """Write a call's result and move the turn on: the next call's checkpoint (and,
        when safe, its intent), or the session's next model_run."""
        write_tool_result(tx, rec, ok, value, job_id=self.job_id, reason=reason,
                          source=provenance, children=children)
        if rest:
            self._early_intent(tx, rest[0])
            tx.checkpoint(self.sid, open_tool_calls=[c.rec.id for c in rest],
                          awaited_children=(), job_id=self.job_id, attempt=self.attempt)
        else:
            self._next_turn(tx)

    def _commit_result(
        self, call: PendingCall, ok: bool, value: Any, rest: list[PendingCall],
        reason: str | None = None, denied: GateDecision | None = None,
    ) -> None:
        rec = call.rec
        try:
            with self.store.transaction() as tx:
                tx.fence(self.job_id, self.attempt)
                if denied is not None:
                    tx.event("FR-EVT-SESS-TOOL-DENIED", self.sid, self.job_id, {
                        "call_id": rec.id, "tool": rec.tool, "reason": reason or "",
                        "detail": denied.message, "capability": denied.capability,
                        "token_id": denied.token_id})
                    if denied.expired is not None:
                        capabilities.note_expired(tx, denied.expired, rec.id)
                self.result_in(tx, rec, ok, value, rest, reason)
        except JobFenced:
            for nxt in rest[:1]:
                nxt.intent_attempt = 0  # rolled back with the result
            # The run was cancelled while the tool ran: the journal still records what
            # happened in the world; the session's history does not move on.
            with self.store.transaction() as tx:
                digest = tx.put({"call_id": rec.id, "ok": ok, "value": value, "reason": reason})
                tx.set_tool_call(rec.id, ToolCallState.DONE if ok else ToolCallState.FAILED,
                                 result_hash=digest)
            raise

    def job_done(self, tx: Tx, outcome: str) -> None:
        tx.set_job(self.job_id, JobState.COMPLETED)
        tx.event("FR-EVT-SESS-SCHED-COMPLETED", self.sid, self.job_id,
                 {"attempt": self.attempt, "outcome": outcome})

    def _next_turn(self, tx: Tx) -> None:
        """All tool calls of the turn have results: queue the session's next model_run."""
        self.job_done(tx, "tools_done")
        tx.set_state(self.sid, SessionState.QUEUED, Reason.NEXT_TURN)
        tx.checkpoint(self.sid, open_tool_calls=(), awaited_children=(),
                      job_id=self.job_id, attempt=self.attempt)
        tx.enqueue(self.sid)
