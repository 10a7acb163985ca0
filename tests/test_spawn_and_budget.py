"""Spawn limits, budget carving, and announce-back in every terminal state."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

import sessiontree as st

SPAWN = ["session.spawn"]


def _tool_results(rt: st.Runtime, sid: str, tool: str) -> list[dict[str, Any]]:
    out = []
    for m in rt.messages(sid):
        if m.role == "tool" and m.body["name"] == tool:
            out.append(json.loads(m.body["content"]))
    return out


def spawner(n_children: int, child_reply: Any = "child done", **spawn_args: Any) -> Any:
    """Root spawns n children, waits, answers; children answer (or follow child_reply)."""

    def policy(turn: st.ScriptTurn) -> st.ModelReply | str:
        if turn.role == "root":
            if turn.turn == 0:
                return st.reply("", *[st.call("spawn_session", role="child", task=str(i), **spawn_args)
                                      for i in range(n_children)])
            if turn.turn == 1:
                return st.reply("", st.call("wait_for_children"))
            return st.reply("root done")
        return child_reply(turn) if callable(child_reply) else child_reply

    return policy


def test_spawn_beyond_max_children_is_rejected_with_spawn_cap(db_path: Path) -> None:
    with st.Runtime.open(db_path, providers=[st.ScriptedProvider(spawner(3))],
                         limits=st.Limits(max_children=2)) as rt:
        root = rt.create_session("r", capabilities=SPAWN)
        assert rt.wait(root, timeout=20).state == "completed"
        results = _tool_results(rt, root, "spawn_session")
        rejected = rt.events(type_prefix="FR-EVT-SESS-SPAWN-REJECTED")
        assert [r.get("reason") for r in results] == [None, None, "spawn_cap"]
        assert [e.payload["reason"] for e in rejected] == ["spawn_cap"]
        assert len(rt.tree(root)[0].children) == 2


def test_spawn_beyond_max_depth_is_rejected_with_depth_limit(db_path: Path) -> None:
    def policy(turn: st.ScriptTurn) -> st.ModelReply | str:
        if turn.turn == 0:
            return st.reply("", st.call("spawn_session", role="child", task="go deeper",
                                        capabilities=SPAWN))
        if turn.turn == 1:
            return st.reply("", st.call("wait_for_children"))
        return "done"

    with st.Runtime.open(db_path, providers=[st.ScriptedProvider(policy)],
                         limits=st.Limits(max_depth=1)) as rt:
        root = rt.create_session("r", capabilities=SPAWN)
        assert rt.wait(root, timeout=20).state == "completed"
        [child] = rt.tree(root)[0].children
        assert child.session.depth == 1 and child.children == []
        assert _tool_results(rt, child.session.id, "spawn_session")[0]["reason"] == "depth_limit"
        [event] = rt.events(type_prefix="FR-EVT-SESS-SPAWN-REJECTED")
        assert (event.model_session_id, event.payload["reason"]) == (child.session.id, "depth_limit")


def test_a_capability_the_parent_lacks_is_dropped_from_the_child_and_named_in_the_result(
    db_path: Path,
) -> None:
    policy = spawner(1, capabilities=["fs.write", "session.spawn"])
    with st.Runtime.open(db_path, providers=[st.ScriptedProvider(policy)]) as rt:
        root = rt.create_session("r", capabilities=SPAWN)
        rt.wait(root, timeout=20)
        (result,) = _tool_results(rt, root, "spawn_session")
        assert (result["capabilities_granted"], result["capabilities_dropped"]) == (
            ["session.spawn"], ["fs.write"])
        (child,) = rt.children(root)
        assert child.capabilities == ("session.spawn",)
        (accepted,) = rt.events(type_prefix="FR-EVT-SESS-SPAWN-ACCEPTED")
        assert accepted.payload["dropped"] == ["fs.write"]


def test_spawn_events_carry_the_childs_session_id(db_path: Path) -> None:
    with st.Runtime.open(db_path, providers=[st.ScriptedProvider(spawner(2))]) as rt:
        root = rt.create_session("r", capabilities=SPAWN)
        rt.wait(root, timeout=20)
        kids = {n.session.id for n in rt.tree(root)[0].children}
        for kind in ("ACCEPTED", "ANNOUNCED"):
            events = rt.events(type_prefix=f"FR-EVT-SESS-SPAWN-{kind}")
            assert {e.model_session_id for e in events} == kids


def test_a_childs_budget_is_carved_from_its_parents_and_a_larger_ask_is_refused(
    db_path: Path,
) -> None:
    alive = threading.Event()  # children stay alive, so none returns its carve early

    def child(turn: st.ScriptTurn) -> str:
        alive.wait(10)
        return "child done"

    policy = spawner(2, child, budget={"model_runs": 6})
    with st.Runtime.open(db_path, providers=[st.ScriptedProvider(policy)]) as rt:
        root = rt.create_session("r", capabilities=SPAWN, budget=st.Budget(model_runs=10))
        rt.wait_state(root, "waiting", timeout=20)
        alive.set()
        rt.wait(root, timeout=20)
        results = _tool_results(rt, root, "spawn_session")
        # 10 runs, 1 in flight for the spawning turn: 9 available; 6 carved, 3 left.
        assert results[0]["budget"]["model_runs"] == 6
        assert results[1]["reason"] == "budget"


@pytest.mark.timeout(60)
def test_a_tree_never_spends_more_than_its_root_budget(db_path: Path) -> None:
    from pydantic import BaseModel

    class Args(BaseModel):
        n: int = 0

    @st.tool("spin", Args, effect="read_only")
    def spin(ctx: st.ToolContext, args: Args) -> str:
        return "again"

    def greedy_child(turn: st.ScriptTurn) -> st.ModelReply:
        return st.reply("", st.call("spin", n=turn.turn))  # never stops on its own

    with st.Runtime.open(db_path, providers=[st.ScriptedProvider(spawner(4, greedy_child))],
                         tools=[spin], limits=st.Limits(max_children=4)) as rt:
        root = rt.create_session("r", capabilities=SPAWN, budget=st.Budget(model_runs=30))
        rt.wait(root, timeout=40)
        tree = rt.tree(root)[0].walk()
        total_runs = sum(s.usage.model_runs for s in tree)
        assert total_runs <= 30
        assert rt.session(root).spent.model_runs <= 30
        assert {s.reason for s in tree if s.role == "child"} == {"budget_exceeded"}
        assert rt.events(type_prefix="FR-EVT-SESS-BUDGET-EXCEEDED")


def test_a_token_budget_stops_a_session_before_a_run_it_cannot_reserve(db_path: Path) -> None:
    from pydantic import BaseModel

    class Args(BaseModel):
        pass

    @st.tool("spin", Args, effect="read_only")
    def spin(ctx: st.ToolContext, args: Args) -> str:
        return "x" * 200

    limits = st.Limits(reserve_tokens=100)
    provider = st.ScriptedProvider(lambda t: st.reply("", st.call("spin")))
    with st.Runtime.open(db_path, providers=[provider], tools=[spin], limits=limits) as rt:
        sid = rt.create_session("t", capabilities=["tool:spin"], budget=st.Budget(tokens=1000))
        info = rt.wait(sid, timeout=20)
    assert (info.state, info.reason) == ("failed", "budget_exceeded")
    # Dispatched only while 100 tokens could be reserved; one run's excess is the most
    # it can overshoot by (see the reservation rule in supervision/scheduler.py).
    per_run = info.usage.tokens / info.usage.model_runs
    assert info.usage.tokens <= 1000 - 100 + per_run


@pytest.mark.parametrize("ending", ["completed", "failed", "cancelled"])
def test_a_child_announces_back_exactly_once_in_each_terminal_state(
    db_path: Path, ending: str
) -> None:
    hold = threading.Event()

    def child(turn: st.ScriptTurn) -> str:
        if ending == "cancelled":
            hold.wait(10)
        return "child summary"


    def hook(step: str, facts: dict[str, Any]) -> None:
        if ending == "failed" and step == "provider.before":
            sid = facts["session_id"]
            if rt_ref and rt_ref[0].session(sid).role == "child":
                raise RuntimeError("child crashes")

    rt_ref: list[st.Runtime] = []
    with st.Runtime.open(db_path, providers=[st.ScriptedProvider(spawner(1, child))],
                         fault_hook=hook, limits=st.Limits(default_restart="temporary")) as rt:
        rt_ref.append(rt)
        root = rt.create_session("r", capabilities=SPAWN)
        if ending == "cancelled":
            rt.wait_state(root, "waiting", timeout=10)
            [node] = rt.tree(root)[0].children
            rt.cancel(node.session.id)
            hold.set()
        assert rt.wait(root, timeout=20).state == "completed"
        [node] = rt.tree(root)[0].children
        mailbox = rt.mailbox(root)
        [waited] = _tool_results(rt, root, "wait_for_children")
        announced = rt.events(type_prefix="FR-EVT-SESS-SPAWN-ANNOUNCED")
    assert [m.sender_id for m in mailbox] == [node.session.id]
    assert mailbox[0].body["status"] == ending
    assert [c["status"] for c in waited["children"]] == [ending]
    assert [e.model_session_id for e in announced] == [node.session.id]
