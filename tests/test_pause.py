"""Pause and resume in process (``Runtime.pause`` / ``resume``, ``supervision.pause``):
nothing is dispatched for a paused session, a running one finishes its step first, its
spawns are rejected with ``paused``, budgets and restart counters do not move, and a
resume queues it again. Every wait is on a state, an event or the scheduler's counters."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

import sessiontree as st
from sessiontree.testing import scheduler_idle

WAIT = 10.0


class Gates:
    """One event per task text: the provider blocks on it (released by the test)."""

    def __init__(self) -> None:
        self.events: dict[str, threading.Event] = {}
        self.started: dict[str, threading.Event] = {}
        self.lock = threading.Lock()

    def _get(self, table: dict[str, threading.Event], key: str) -> threading.Event:
        with self.lock:
            return table.setdefault(key, threading.Event())

    def wait(self, task: str) -> None:
        self._get(self.started, task).set()
        assert self._get(self.events, task).wait(WAIT), f"gate {task} never released"

    def release(self, task: str) -> None:
        self._get(self.events, task).set()

    def entered(self, task: str) -> bool:
        return self._get(self.started, task).wait(WAIT)


def gated(gates: Gates) -> st.ScriptedProvider:
    def policy(turn: st.ScriptTurn) -> Any:
        if turn.task.startswith("gated") and turn.turn == 0:
            gates.wait(turn.task)
        if turn.task.startswith("spawner") and turn.turn == 0:
            gates.wait(turn.task)
            return st.reply("", st.call("spawn_session", role="kid", task="k"))
        return f"done {turn.task}"

    return st.ScriptedProvider(policy)


def settle(rt: st.Runtime) -> None:
    """Wait until the scheduler has counted every ended run out (an actor commits its
    session's end, then tells the scheduler): it has pumped its queue since."""
    scheduler_idle(rt, timeout=WAIT)


def dispatched(rt: st.Runtime, sid: str) -> int:
    return len(rt.events(session_id=sid, type_prefix="FR-EVT-SESS-SCHED-DISPATCHED"))


def test_a_paused_queued_session_is_not_dispatched_until_resumed(db_path: Path) -> None:
    gates = Gates()
    limits = st.Limits(max_concurrent_runs=1)
    with st.Runtime.open(db_path, providers=[gated(gates)], limits=limits) as rt:
        a = rt.create_session("gated a")
        assert gates.entered("gated a")
        b = rt.create_session("b")
        assert rt.session(b).state == "queued"
        assert rt.pause(b) == [b]
        assert rt.session(b).state == "paused"
        before = rt.session(b)
        gates.release("gated a")
        assert rt.wait(a, timeout=WAIT).state == "completed"
        # the scheduler counted a's run out, so it has pumped its queue since: b was
        # eligible for the free slot, and stayed held
        settle(rt)
        held = rt.session(b)
        assert held.state == "paused" and dispatched(rt, b) == 0
        assert (held.usage, held.spent) == (before.usage, before.spent)
        assert [j.state for j in rt.jobs(session_id=b)] == ["queued"]
        assert rt.resume(b) == [b]
        assert rt.wait(b, timeout=WAIT).state == "completed"
        paused = rt.events(session_id=b, type_prefix="FR-EVT-SESS-PAUSED")
        resumed = rt.events(session_id=b, type_prefix="FR-EVT-SESS-RESUMED")
        assert [e.payload["from_state"] for e in paused] == ["queued"]
        assert [e.payload["to_state"] for e in resumed] == ["queued"]
        assert dispatched(rt, b) == 1


def test_a_running_session_finishes_its_step_then_waits_paused_and_its_spawns_are_rejected(
    db_path: Path,
) -> None:
    gates = Gates()
    with st.Runtime.open(db_path, providers=[gated(gates)]) as rt:
        sid = rt.create_session("spawner", capabilities=["session.spawn"])
        assert gates.entered("spawner")
        assert rt.pause(sid) == [sid]
        assert rt.session(sid).state == "running"  # its step goes on
        gates.release("spawner")
        paused = rt.wait_state(sid, "paused", timeout=WAIT)
        rejected = rt.events(session_id=sid, type_prefix="FR-EVT-SESS-SPAWN-REJECTED")
        assert [e.payload["reason"] for e in rejected] == ["paused"]
        assert rt.children(sid) == []
        # one model run, no restart: the hold moved no counter
        assert paused.usage.model_runs == 1
        assert [j.attempt for j in rt.jobs(session_id=sid)] == [1, 1]
        assert not rt.events(session_id=sid, type_prefix="FR-EVT-SESS-RESTARTED")
        settle(rt)
        assert rt.resume(sid) == [sid]
        done = rt.wait(sid, timeout=WAIT)
        assert done.state == "completed" and done.usage.model_runs == 2


def test_pausing_twice_or_resuming_what_is_not_paused_changes_nothing(db_path: Path) -> None:
    with st.Runtime.open(db_path, providers=[st.ScriptedProvider(lambda t: "ok")]) as rt:
        sid = rt.create_session("x", start=False)
        assert rt.pause(sid) == [sid]
        assert rt.pause(sid) == []
        assert rt.paused_sessions() == [sid]
        assert rt.resume(sid) == [sid]
        assert rt.resume(sid) == []
        assert len(rt.events(session_id=sid, type_prefix="FR-EVT-SESS-PAUSED")) == 1
        assert len(rt.events(session_id=sid, type_prefix="FR-EVT-SESS-RESUMED")) == 1
        assert rt.session(sid).state == "created"


def test_pausing_an_unknown_or_ended_session_is_refused(db_path: Path) -> None:
    with st.Runtime.open(db_path, providers=[st.ScriptedProvider(lambda t: "ok")]) as rt:
        sid = rt.create_session("x")
        assert rt.wait(sid, timeout=WAIT).state == "completed"
        with pytest.raises(st.IllegalTransition, match="completed -> paused"):
            rt.pause(sid)
        with pytest.raises(st.UnknownSession):
            rt.resume("ses_nope")
        with pytest.raises(st.InvalidInput):
            rt.pause(sid, note=3)  # type: ignore[arg-type]


def test_a_subtree_pause_holds_the_waiting_parent_and_every_child(db_path: Path) -> None:
    gates = Gates()

    def policy(turn: st.ScriptTurn) -> Any:
        if turn.role == "root":
            if turn.turn == 0:
                return st.reply("", *[st.call("spawn_session", role="kid", task=f"gated {i}")
                                      for i in range(2)])
            if turn.turn == 1:
                return st.reply("", st.call("wait_for_children"))
            return "all done"
        gates.wait(turn.task)
        return "kid done"

    with st.Runtime.open(db_path, providers=[st.ScriptedProvider(policy)]) as rt:
        root = rt.create_session("r", capabilities=["session.spawn"])
        rt.wait_state(root, "waiting", timeout=WAIT)
        assert gates.entered("gated 0") and gates.entered("gated 1")
        kids = [c.id for c in rt.children(root)]
        assert sorted(rt.pause(root, subtree=True)) == sorted([root, *kids])
        assert [rt.session(s).state for s in (root, *kids)] == ["waiting", "running", "running"]
        gates.release("gated 0")
        gates.release("gated 1")
        for kid in kids:  # their step was their last
            assert rt.wait(kid, timeout=WAIT).state == "completed"
        # announced to: the parent's next run would start, and it is held instead
        rt.wait_state(root, "paused", timeout=WAIT)
        settle(rt)
        assert rt.session(root).state == "paused" and dispatched(rt, root) == 2
        assert rt.resume(root, subtree=True) == [root]  # the children have ended
        assert rt.wait(root, timeout=WAIT).state == "completed"


def test_a_pause_outlives_the_host(db_path: Path) -> None:
    provider = st.ScriptedProvider(lambda t: "ok")
    with st.Runtime.open(db_path, providers=[provider], limits=st.Limits(max_concurrent_runs=1)) as rt:
        sid = rt.create_session("x", start=False)
        rt.pause(sid)
        rt.enqueue(sid)  # queued while marked paused: held at dispatch
        rt.wait_state(sid, "paused", timeout=WAIT)
    with st.Runtime.open(db_path, providers=[provider]) as rt:
        settle(rt)
        assert rt.session(sid).state == "paused" and dispatched(rt, sid) == 0
        rt.resume(sid)
        assert rt.wait(sid, timeout=WAIT).state == "completed"
