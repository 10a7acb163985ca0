"""The tool-call journal: an intent row commits before a tool runs, its result after.

A call cut off between the two is re-run when its tool is ``read_only`` or
``idempotent`` (with the same idempotency key), and handed to an operator when it is
``side_effecting``: it never runs twice.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import sessiontree as st
from sessiontree.testing import Commits, FaultPlan, ManualClock

WAIT = 10.0


class NoteArgs(BaseModel):
    text: str


class Recorder:
    """Tools that record every time they run, with the call facts they were given."""

    def __init__(self) -> None:
        self.runs: list[dict[str, Any]] = []
        self.store: Any = None

    def tool(self, name: str, effect: str) -> st.Tool:
        def fn(ctx: st.ToolContext, args: NoteArgs) -> dict[str, Any]:
            journal = self.store.tool_calls(ids=[ctx.call_id])[0].state if self.store else None
            self.runs.append({"tool": name, "call_id": ctx.call_id, "attempt": ctx.attempt,
                              "key": ctx.idempotency_key, "journal": journal})
            return {"wrote": args.text}

        return st.tool(name, NoteArgs, effect=effect)(fn)


def one_call_policy(tool_name: str) -> Callable[[st.ScriptTurn], Any]:
    """Turn 0 calls the tool; turn 1 answers with what the tool result said."""

    def policy(turn: st.ScriptTurn) -> Any:
        if turn.turn == 0:
            return st.reply("", st.call(tool_name, text="hello"))
        return f"tool said {turn.tool_results[0].content}"

    return policy


def open_rt(
    db: Path, policy: Callable[[st.ScriptTurn], Any], recorder: Recorder, tools: Iterable[st.Tool],
    *, clock: ManualClock, fault_hook: Any = None,
) -> st.Runtime:
    rt = st.Runtime.open(db, providers=[st.ScriptedProvider(policy)], tools=tools, clock=clock,
                         fault_hook=fault_hook, lease_ttl=3600)
    recorder.store = rt._store
    return rt


def event_types(rt: st.Runtime, sid: str, prefix: str) -> list[tuple[str, dict[str, Any]]]:
    return [(e.type, e.payload) for e in rt.events(session_id=sid, type_prefix=prefix)]


def restart_once(rt: st.Runtime, clock: ManualClock, sid: str) -> None:
    Commits(rt).until(lambda: rt.events(session_id=sid, type_prefix="FR-EVT-SESS-RESTARTED"))
    rt.stats()  # barrier: the back-off timer is armed
    clock.advance(0.5)


# -- intent before, result after ---------------------------------------------------------------
# (A side-effecting call's intent commits on its own; the others' ride in the commit
# before the call -- either way it must be in the store when the tool runs.)
@pytest.mark.parametrize("effect", ["side_effecting", "idempotent", "read_only"])
def test_intent_commits_before_the_tool_runs_and_the_result_after(
    db_path: Path, effect: str
) -> None:
    rec = Recorder()
    with open_rt(db_path, one_call_policy("note"), rec, [rec.tool("note", effect)],
                 clock=ManualClock()) as rt:
        sid = rt.create_session("t", capabilities=["tool:note"])
        done = rt.wait(sid, timeout=WAIT)

        (call,) = rt.tool_calls(sid)
        assert [r["journal"] for r in rec.runs] == ["intent"]  # what the store said mid-run
        assert (call.state, call.attempts, call.effect) == ("done", 1, effect)
        journal = event_types(rt, sid, "FR-EVT-SESS-TOOL-")
        assert [t for t, _ in journal] == ["FR-EVT-SESS-TOOL-INTENT", "FR-EVT-SESS-TOOL-RESULT"]
        assert all(p["call_id"] == call.id for _, p in journal)
        assert journal[0][1]["idempotency_key"] == call.idempotency_key
        assert journal[1][1]["result_hash"] == call.result_hash
        assert done.summary == 'tool said {"wrote": "hello"}'


@pytest.mark.parametrize("effects", [("read_only", "read_only"),
                                     ("read_only", "side_effecting"),
                                     ("side_effecting", "idempotent")])
def test_every_call_of_a_turn_is_journaled_before_it_runs(
    db_path: Path, effects: tuple[str, str]
) -> None:
    rec = Recorder()

    def policy(turn: st.ScriptTurn) -> Any:
        if turn.turn == 0:
            return st.reply("", st.call("a", text="1"), st.call("b", text="2"))
        return "ok"

    tools = [rec.tool("a", effects[0]), rec.tool("b", effects[1])]
    with open_rt(db_path, policy, rec, tools, clock=ManualClock()) as rt:
        sid = rt.create_session("t", capabilities=["tool:a", "tool:b"])
        rt.wait(sid, timeout=WAIT)
        assert [(r["tool"], r["journal"], r["attempt"]) for r in rec.runs] == [
            ("a", "intent", 1), ("b", "intent", 1)]
        calls = rt.tool_calls(sid)
        assert [(c.tool, c.state, c.attempts) for c in calls] == [("a", "done", 1), ("b", "done", 1)]
        journal = [(t, p["call_id"]) for t, p in event_types(rt, sid, "FR-EVT-SESS-TOOL-")]
        a, b = (c.id for c in calls)
        assert journal == [("FR-EVT-SESS-TOOL-INTENT", a), ("FR-EVT-SESS-TOOL-RESULT", a),
                           ("FR-EVT-SESS-TOOL-INTENT", b), ("FR-EVT-SESS-TOOL-RESULT", b)]


@pytest.mark.parametrize("effect", ["idempotent", "read_only"])
def test_call_cut_off_before_its_result_reruns_with_the_same_idempotency_key(
    db_path: Path, effect: str,
) -> None:
    clock = ManualClock()
    rec = Recorder()
    plan = FaultPlan().at("tool.after", times=1, tool="upsert")
    with open_rt(db_path, one_call_policy("upsert"), rec, [rec.tool("upsert", effect)],
                 clock=clock, fault_hook=plan) as rt:
        sid = rt.create_session("t", capabilities=["tool:upsert"])
        restart_once(rt, clock, sid)
        done = rt.wait(sid, timeout=WAIT)

        (call,) = rt.tool_calls(sid)
        assert done.state == "completed"
        assert [(r["call_id"], r["attempt"], r["key"]) for r in rec.runs] == [
            (call.id, 1, call.idempotency_key), (call.id, 2, call.idempotency_key)]
        assert (call.state, call.attempts) == ("done", 2)
        tool_messages = [m for m in rt.messages(sid) if m.role == "tool"]
        assert len(tool_messages) == 1  # one result in the history, not two
        intents = [p for t, p in event_types(rt, sid, "FR-EVT-SESS-TOOL-INTENT")]
        assert [(p["attempt"], p["idempotency_key"]) for p in intents] == [
            (1, call.idempotency_key), (2, call.idempotency_key)]


# -- side effects are never guessed ----------------------------------------------------------
def hold_side_effect(db_path: Path, rec: Recorder, clock: ManualClock,
                     policy: Callable[[st.ScriptTurn], Any] | None = None) -> tuple[st.Runtime, str]:
    plan = FaultPlan().at("tool.after", times=1, tool="send")
    rt = open_rt(db_path, policy or one_call_policy("send"), rec,
                 [rec.tool("send", "side_effecting")], clock=clock, fault_hook=plan)
    sid = rt.create_session("t", capabilities=["tool:send"])
    restart_once(rt, clock, sid)
    rt.wait_state(sid, "awaiting_operator", timeout=WAIT)
    return rt, sid


def test_side_effecting_call_cut_off_before_its_result_is_held_for_an_operator(
    db_path: Path,
) -> None:
    clock = ManualClock()
    rec = Recorder()
    rt, sid = hold_side_effect(db_path, rec, clock)
    with rt:
        held = rt.session(sid)
        (call,) = rt.tool_calls(sid)
        assert (held.state, held.reason) == ("awaiting_operator", "unknown_side_effect")
        assert len(rec.runs) == 1
        assert call.state == "intent"
        (unknown,) = [p for _, p in event_types(rt, sid, "FR-EVT-SESS-TOOL-UNKNOWN-SIDE-EFFECT")]
        assert unknown == {"call_id": call.id, "tool": "send"}
        assert [(j.state, j.attempt, j.reason) for j in rt.jobs(session_id=sid)] == [
            ("failed", 2, "unknown_side_effect")]
        assert rt._store.checkpoint(sid).open_tool_calls == (call.id,)
        clock.advance(60)  # nothing is waiting to retry it
        assert rt.session(sid).state == "awaiting_operator"
        assert len(rec.runs) == 1


def test_resolving_a_held_call_as_done_resumes_without_running_the_tool_again(
    db_path: Path,
) -> None:
    clock = ManualClock()
    rec = Recorder()
    rt, sid = hold_side_effect(db_path, rec, clock)
    with rt:
        (call,) = rt.tool_calls(sid)
        rt.resolve(call.id, "done", result={"sent": True})
        done = rt.wait(sid, timeout=WAIT)

        assert (done.state, done.summary) == ("completed", 'tool said {"sent": true}')
        assert len(rec.runs) == 1
        (after,) = rt.tool_calls(sid)
        assert after.state == "done"
        resolved = [p for _, p in event_types(rt, sid, "FR-EVT-SESS-TOOL-RESOLVED")]
        assert resolved == [{"call_id": call.id, "outcome": "done", "by": "operator"}]


def test_resolving_a_held_call_as_failed_gives_the_model_an_error_result(db_path: Path) -> None:
    clock = ManualClock()
    rec = Recorder()
    seen: list[Any] = []

    def policy(turn: st.ScriptTurn) -> Any:
        if turn.turn == 0:
            return st.reply("", st.call("send", text="hello"))
        seen.append(turn.result_json())
        return "gave up"

    rt, sid = hold_side_effect(db_path, rec, clock, policy)
    with rt:
        (call,) = rt.tool_calls(sid)
        rt.resolve(call.id, "failed")
        assert rt.wait(sid, timeout=WAIT).state == "completed"

        assert len(rec.runs) == 1
        (error,) = seen
        assert error["reason"] == "operator_failed" and error["error"]
        (after,) = rt.tool_calls(sid)
        assert after.state == "failed"
        results = [p for _, p in event_types(rt, sid, "FR-EVT-SESS-TOOL-RESULT")]
        assert (results[-1]["ok"], results[-1]["reason"]) == (False, "operator_failed")


def test_resolve_refuses_a_call_that_is_not_held(db_path: Path) -> None:
    rec = Recorder()
    with open_rt(db_path, one_call_policy("send"), rec, [rec.tool("send", "side_effecting")],
                 clock=ManualClock()) as rt:
        sid = rt.create_session("t", capabilities=["tool:send"])
        rt.wait(sid, timeout=WAIT)
        (call,) = rt.tool_calls(sid)

        with pytest.raises(st.InvalidInput):
            rt.resolve(call.id, "done")
        with pytest.raises(st.InvalidInput):
            rt.resolve("tc_does_not_exist", "done")
        assert len(rec.runs) == 1
        assert rt.session(sid).state == "completed"


def test_resolve_refuses_an_unknown_outcome(db_path: Path) -> None:
    clock = ManualClock()
    rec = Recorder()
    rt, sid = hold_side_effect(db_path, rec, clock)
    with rt:
        (call,) = rt.tool_calls(sid)
        with pytest.raises(st.InvalidInput):
            rt.resolve(call.id, "maybe")
        assert rt.session(sid).state == "awaiting_operator"


def test_tool_error_is_a_result_for_the_model_not_a_crash(db_path: Path) -> None:
    runs: list[int] = []

    @st.tool("flaky", NoteArgs, effect="side_effecting")
    def flaky(ctx: st.ToolContext, args: NoteArgs) -> str:
        runs.append(ctx.attempt)
        raise st.ToolError("no such recipient")

    rec = Recorder()
    with open_rt(db_path, one_call_policy("flaky"), rec, [flaky], clock=ManualClock()) as rt:
        sid = rt.create_session("t", capabilities=["tool:flaky"])
        done = rt.wait(sid, timeout=WAIT)

        assert done.state == "completed"
        assert json.loads(done.summary.removeprefix("tool said ")) == {
            "error": "no such recipient", "reason": "tool_error"}
        assert runs == [1]
        assert rt.events(session_id=sid, type_prefix="FR-EVT-SESS-CRASHED") == []
        (call,) = rt.tool_calls(sid)
        assert call.state == "failed"


def test_spawn_cut_off_before_its_result_finds_the_same_child_on_rerun(db_path: Path) -> None:
    clock = ManualClock()
    spawned: list[str] = []

    def policy(turn: st.ScriptTurn) -> Any:
        if turn.role == "root" and turn.turn == 0:
            return st.reply("", st.call("spawn_session", role="worker", task="w"))
        if turn.role == "root" and turn.turn == 1:
            spawned.append(turn.result_json()["child_id"])
            return st.reply("", st.call("wait_for_children"))
        if turn.role == "root":
            return turn.result_json()["children"][0]["summary"]
        return "worker done"

    plan = FaultPlan().at("tool.after", times=1, tool="spawn_session")
    rec = Recorder()
    with open_rt(db_path, policy, rec, [], clock=clock, fault_hook=plan) as rt:
        root = rt.create_session("r", capabilities=["session.spawn"])
        restart_once(rt, clock, root)
        done = rt.wait(root, timeout=WAIT)

        (child,) = rt.children(root)
        assert (done.state, done.summary) == ("completed", "worker done")
        assert spawned == [child.id]
        assert rt.session(root).spawn_count == 1
        assert len(rt.events(session_id=root, type_prefix="FR-EVT-SESS-SPAWN-REQUESTED")) == 1
        (call, _) = rt.tool_calls(root)
        assert (call.tool, call.state, call.attempts) == ("spawn_session", "done", 2)
