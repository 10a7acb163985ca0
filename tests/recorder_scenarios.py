"""Scenarios for the Flight Recorder's catalogue test: each drives one real runtime on
its own store through a piece of the library (ScriptedProvider, real tools, the real
Tool Gate, workspaces, spawns, consent, capability tokens, budgets, provider failures,
cancellation, crashes, restarts, supervision, the heartbeat) and returns every event
that store holds when it is done. No scenario writes an event itself but through the
public API's own verbs (``record_event`` is the host's, and is one of them).

Time is a ManualClock wherever a back-off or an expiry is involved; a scenario waits
on commits (``Commits``), futures and events, never by sleeping.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from workspace_support import make_repo

import sessiontree as st
from sessiontree._views import event_info
from sessiontree.persistence import commands, open_store
from sessiontree.testing import Commits, FaultPlan, InjectedFault, ManualClock

WAIT = 10.0
HANG = 60.0  # a stuck provider call: ended by cancel or close, never waited out

Events = list[st.EventInfo]


class Args(BaseModel):
    text: str = ""


def _tool(name: str, effect: str, capability: str | None = None,
          body: Callable[[st.ToolContext], None] | None = None) -> st.Tool:
    def fn(ctx: st.ToolContext, args: Args) -> str:
        if body is not None:
            body(ctx)
        return f"{name}:{args.text}"

    return st.tool(name, Args, effect=effect, capability=capability)(fn)


def _has(rt: st.Runtime, sid: str, event_type: str) -> bool:
    return any(e.type == event_type for e in rt.events(session_id=sid, type_prefix=event_type))


# -- the spine: a tree, tools, the gate, budgets, crashes, cancel, recovery -----------------------
def tree_with_tools(db: Path) -> Events:
    """Spawns (one rejected by depth), tools (one denied), waiting, announce-back,
    throttling, a host event and a compaction."""

    def policy(turn: st.ScriptTurn) -> Any:
        if turn.role == "root":
            if turn.turn == 0:
                caps = ["session.spawn", "fs.read"]
                return st.reply("", st.call("spawn_session", role="worker", task="a",
                                            capabilities=caps),
                                st.call("spawn_session", role="worker", task="b",
                                        capabilities=caps))
            if turn.turn == 1:
                return st.reply("", st.call("wait_for_children"))
            return "root done"
        if turn.turn == 0:  # a worker: a spawn beyond max_depth, a tool it may not call
            return st.reply("", st.call("spawn_session", role="deeper", task="c"),
                            st.call("secret", text="x"), st.call("look", text="y"))
        return "worker done"

    limits = st.Limits(max_concurrent_runs=1, max_depth=1)
    tools = [_tool("look", "read_only", "fs.read"), _tool("secret", "read_only", "vault")]
    with st.Runtime.open(db, providers=[st.ScriptedProvider(policy)], tools=tools,
                         limits=limits) as rt:
        root = rt.create_session("go", capabilities=["session.spawn", "fs.read"])
        assert rt.wait(root, timeout=WAIT).state == "completed"
        rt.record_event(root, "host.checked", {"ok": True})
        before = rt.events()  # compaction removes some of them
        rt.compact(st.RetentionPolicy(keep_last=5))
        return before + rt.events(after=before[-1].seq)


def budget_runs_out(db: Path) -> Events:
    def policy(turn: st.ScriptTurn) -> Any:
        return st.reply("", st.call("look", text=str(turn.turn)))

    with st.Runtime.open(db, providers=[st.ScriptedProvider(policy)],
                         tools=[_tool("look", "read_only")]) as rt:
        sid = rt.create_session("go", budget=st.Budget(model_runs=1), capabilities=["tool:look"])
        assert rt.wait(sid, timeout=WAIT).reason == "budget_exceeded"
        return rt.events()


def crash_and_restart(db: Path) -> Events:
    clock = ManualClock()
    plan = FaultPlan().at("provider.before", times=1)
    with st.Runtime.open(db, providers=[st.ScriptedProvider(lambda t: "ok")], clock=clock,
                         fault_hook=plan, lease_ttl=3600) as rt:
        sid = rt.create_session("go")
        Commits(rt).until(lambda: _has(rt, sid, "FR-EVT-SESS-RESTARTED"))
        rt.stats()  # barrier: the back-off timer is armed
        clock.advance(60)
        assert rt.wait(sid, timeout=WAIT).state == "completed"
        return rt.events()


def cancel_a_running_session(db: Path) -> Events:
    entered = threading.Event()

    def latency(request: st.ModelRequest) -> float:
        entered.set()
        return HANG  # sleep-ok: ScriptedProvider waits on the run's cancel token

    with st.Runtime.open(db, providers=[st.ScriptedProvider(lambda t: "ok", latency=latency)]) as rt:
        sid = rt.create_session("go")
        assert entered.wait(WAIT)
        rt.cancel(sid, note="not needed")
        assert rt.wait(sid, timeout=WAIT).state == "cancelled"
        return rt.events()


def die_and_recover(db: Path) -> Events:
    entered = threading.Event()

    def latency(request: st.ModelRequest) -> float:
        if request.attempt == 1:
            entered.set()
            return HANG  # sleep-ok: cut off by close(), as a kill -9 would
        return 0.0

    provider = st.ScriptedProvider(lambda t: "ok", latency=latency)
    with st.Runtime.open(db, providers=[provider], lease_ttl=3600) as rt:
        sid = rt.create_session("go")
        assert entered.wait(WAIT)
    with st.Runtime.open(db, providers=[provider], lease_ttl=3600) as rt:
        assert rt.wait(sid, timeout=WAIT).state == "completed"
        return rt.events()


def side_effect_held_and_resolved(db: Path) -> Events:
    clock = ManualClock()
    plan = FaultPlan().at("tool.after", times=1, tool="send")

    def policy(turn: st.ScriptTurn) -> Any:
        return st.reply("", st.call("send", text="hi")) if turn.turn == 0 else "sent"

    with st.Runtime.open(db, providers=[st.ScriptedProvider(policy)],
                         tools=[_tool("send", "side_effecting")], clock=clock, fault_hook=plan,
                         lease_ttl=3600) as rt:
        sid = rt.create_session("go", capabilities=["tool:send"])
        Commits(rt).until(lambda: _has(rt, sid, "FR-EVT-SESS-RESTARTED"))
        rt.stats()
        clock.advance(60)
        rt.wait_state(sid, "awaiting_operator", timeout=WAIT)
        (call,) = rt.tool_calls(sid)
        rt.resolve(call.id, "done")
        assert rt.wait(sid, timeout=WAIT).state == "completed"
        return rt.events()


# -- supervision: groups, intensity, significant children, the operator's retry ------------------
def group_restart_then_supervisor_gives_up(db: Path) -> Events:
    """A one_for_all parent (at most one restart a minute): child a crashes once b is in
    its call, so b is stopped and both start again as a group; a crashes again, and the
    parent gives up."""
    clock = ManualClock()
    b_in_call = threading.Event()

    def latency(request: st.ModelRequest) -> float:
        if request.role == "b" and request.attempt == 1:
            b_in_call.set()
            return HANG  # sleep-ok: ends when the group stops b (its cancel token)
        return 0.0

    def policy(turn: st.ScriptTurn) -> Any:
        if turn.role == "root":
            if turn.turn == 0:
                return st.reply("", st.call("spawn_session", role="a", task="a"),
                                st.call("spawn_session", role="b", task="b"))
            return st.reply("", st.call("wait_for_children"))
        if turn.role == "a":
            assert b_in_call.wait(WAIT)
            raise RuntimeError(f"a crashed at attempt {turn.request.attempt}")
        return "b done"

    with st.Runtime.open(db, providers=[st.ScriptedProvider(policy, latency=latency)],
                         clock=clock, lease_ttl=3600) as rt:
        seen = Commits(rt)
        root = rt.create_session("r", capabilities=["session.spawn"], child_strategy="one_for_all",
                                 supervisor=st.SupervisorPolicy(max_restarts=1, period=60))
        seen.until(lambda: _has(rt, root, "FR-EVT-SESS-GROUP-RESTART") and any(
            _has(rt, c.id, "FR-EVT-SESS-STOPPED") for c in rt.children(root)))
        rt.stats()  # barrier: the group's start is armed
        clock.advance(0.5)  # a's back-off
        done = rt.wait(root, timeout=WAIT)
        assert (done.state, done.reason) == ("failed", "restart_intensity")
        return rt.events()


def significant_child_shuts_its_parent_down(db: Path) -> Events:
    def policy(turn: st.ScriptTurn) -> Any:
        if turn.role == "root":
            if turn.turn == 0:
                return st.reply("", st.call("spawn_session", role="worker", task="w",
                                            significant=True))
            return st.reply("", st.call("wait_for_children"))
        return "worker done"

    with st.Runtime.open(db, providers=[st.ScriptedProvider(policy)]) as rt:
        root = rt.create_session("r", capabilities=["session.spawn"],
                                 auto_shutdown="any_significant")
        done = rt.wait(root, timeout=WAIT)
        assert (done.state, done.reason) == ("completed", "auto_shutdown")
        return rt.events()


def operator_retries_a_failed_session(db: Path) -> Events:
    def not_retryable(step: str, facts: dict[str, Any]) -> BaseException:
        return InjectedFault(step, facts, retryable=False)

    plan = FaultPlan().at("provider.before", times=1, error=not_retryable)
    with st.Runtime.open(db, providers=[st.ScriptedProvider(lambda t: "second time")],
                         fault_hook=plan) as rt:
        sid = rt.create_session("t")
        assert rt.wait(sid, timeout=WAIT).state == "failed"
        rt.retry(sid, note="try again")
        assert rt.wait(sid, timeout=WAIT).state == "completed"
        return rt.events()


# -- providers, capabilities, consent -------------------------------------------------------------
def provider_overloaded_cools_down(db: Path) -> Events:
    clock = ManualClock()
    failures = [st.ProviderError("overloaded", reason=st.Reason.PROVIDER_OVERLOADED, status=529)]

    def policy(turn: st.ScriptTurn) -> Any:
        if failures:
            raise failures.pop()
        return "answered"

    with st.Runtime.open(db, providers=[st.ScriptedProvider(policy)], clock=clock) as rt:
        sid = rt.create_session("t")
        Commits(rt).until(lambda: rt.session(sid).state == "queued"
                          and _has(rt, sid, "FR-EVT-SESS-SCHED-COOLDOWN"))
        rt.stats()
        clock.advance(1.0)  # the default cool-down
        assert rt.wait(sid, timeout=WAIT).state == "completed"
        return rt.events()


def capabilities_expire_and_are_revoked(db: Path) -> Events:
    """A token that expires while its tool runs (the next call is denied), and a token
    the host revokes."""
    clock = ManualClock()
    note = _tool("note", "read_only", body=lambda ctx: clock.advance(60))

    def policy(turn: st.ScriptTurn) -> Any:
        return st.reply("", st.call("note")) if turn.turn < 2 else "done"

    with st.Runtime.open(db, providers=[st.ScriptedProvider(policy)], tools=[note],
                         clock=clock) as rt:
        sid = rt.create_session("t", capabilities=["tool:note"],
                                capabilities_expire_at=clock.now() + 30)
        assert rt.wait(sid, timeout=WAIT).state == "completed"
        other = rt.create_session("t", capabilities=["tool:note"], start=False)
        (token,) = rt.capability_tokens(other)
        assert rt.revoke(token.id) == [token.id]
        return rt.events()


def consent_asked_granted_denied_revoked(db: Path) -> Events:
    cloud = st.ScriptedProvider(lambda t: "answered", name="cloud")
    cloud.local = False  # as a real adapter pointed at a remote host says
    with st.Runtime.open(db, providers=[cloud]) as rt:
        granted, denied = rt.create_session("a"), rt.create_session("b")
        for sid in (granted, denied):
            rt.wait_state(sid, "awaiting_consent", timeout=WAIT)
        assert rt.grant_consent(granted) == [granted]
        assert rt.deny_consent(denied) == [denied]
        assert rt.wait(granted, timeout=WAIT).state == "completed"
        assert rt.wait(denied, timeout=WAIT).reason == "consent_denied"
        rt.revoke_consent(granted)
        return rt.events()


# -- the workspace and the store ------------------------------------------------------------------
def worktrees_merged_and_a_conflict(db: Path) -> Events:
    """Two children edit one file in their own worktrees; the parent merges both: the
    first merges clean, the second conflicts."""
    repo = make_repo(db.parent / f"{db.stem}-repo", {"greet.txt": "hello\n"})
    rw = ["fs.read", "fs.write"]

    def policy(turn: st.ScriptTurn) -> Any:
        if turn.role == "root":
            if turn.turn == 0:
                return st.reply("", *[st.call("spawn_session", role=r, task=r, capabilities=rw,
                                              workspace_mode="worktree") for r in ("x", "y")])
            if turn.turn == 1:
                return st.reply("", st.call("wait_for_children"))
            if turn.turn == 2:
                kids = [c["child_id"] for c in turn.result_json()["children"]]
                return st.reply("", *[st.call("merge_child", child_id=k) for k in kids])
            return "merged one of two"
        if turn.turn == 0:
            return st.reply("", st.call("write_file", path="greet.txt", content=f"{turn.role}\n"))
        return f"{turn.role} edited"

    with st.Runtime.open(db, providers=[st.ScriptedProvider(policy)]) as rt:
        root = rt.create_session("go", capabilities=["session.spawn", *rw], workspace=repo,
                                 workspace_mode="worktree")
        assert rt.wait(root, timeout=WAIT).state == "completed"
        return rt.events()


def store_file_replaced_under_the_host(db: Path) -> Events:
    beat = ManualClock()  # paces the lease heartbeat, which checks the file's identity
    moved = db.with_name(f"{db.stem}-moved.db")
    with st.Runtime.open(db, providers=[st.ScriptedProvider(lambda t: "done")],
                         heartbeat_clock=beat, lease_ttl=15.0) as rt:
        rt.wait(rt.create_session("t"), timeout=WAIT)
        os.replace(db, moved)
        db.write_bytes(b"someone else's file")
        beat.advance(5.0)  # one heartbeat: it finds the file replaced
        try:
            rt.create_session("t")
            raise AssertionError("a replaced store was written to")
        except st.StoreReplaced:
            pass
    store = open_store(moved, create=False)  # the event is kept in the store it had open
    try:
        return [event_info(e) for e in store.events()]
    finally:
        store.close()


def operator_steers_through_the_store(db: Path) -> Events:
    """Commands written while no host runs (a pause, a cancel of an unknown session)
    are applied or refused by the next open; the host then resumes the paused one."""
    provider = st.ScriptedProvider(lambda t: "ok")
    with st.Runtime.open(db, providers=[provider]) as rt:
        sid = rt.create_session("held", start=False)
    store = open_store(db, create=False)
    try:
        commands.write(store, "pause", sid, note="hold it")
        commands.write(store, "cancel", "s_nobody")
    finally:
        store.close()
    with st.Runtime.open(db, providers=[provider]) as rt:
        assert rt.paused_sessions() == [sid]
        rt.enqueue(sid)
        assert rt.resume(sid) == [sid]
        assert rt.wait(sid, timeout=WAIT).state == "completed"
        return rt.events()


SCENARIOS: list[Callable[[Path], Events]] = [
    tree_with_tools, budget_runs_out, crash_and_restart, cancel_a_running_session,
    die_and_recover, side_effect_held_and_resolved, group_restart_then_supervisor_gives_up,
    significant_child_shuts_its_parent_down, operator_retries_a_failed_session,
    provider_overloaded_cools_down, capabilities_expire_and_are_revoked,
    consent_asked_granted_denied_revoked, worktrees_merged_and_a_conflict,
    store_file_replaced_under_the_host, operator_steers_through_the_store,
]
