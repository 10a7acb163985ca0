"""Supervision with OTP's guarantees for groups: stop order, stop-before-start, start
order, the crashed child's back-off, a failed restart inside a group, teardown order,
the shutdown protocol, a parent's supervisor intensity, significant children.

Time is a ManualClock; what a test waits for it waits for on commits, never by sleeping.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

import sessiontree as st
from sessiontree.actors.ending import auto_shutdown_due
from sessiontree.supervision.intensity import decide_supervisor
from sessiontree.testing import Commits, FaultPlan, ManualClock, disk_full

WAIT = 10.0


class Flight:
    """A provider playing each role's attempts: ``answer`` at once, ``block`` until the
    run is cancelled, ``deaf`` until the test releases it (it ignores cancel),
    ``crash``; ``crash after X,Y`` or ``answer after X,Y`` once roles X and Y are in a
    call. The root
    spawns ``children`` (with ``spawn`` arguments), waits for them, and reports."""

    local = True

    def __init__(self, children: list[str], plays: dict[tuple[str, int], str],
                 spawn: dict[str, dict[str, Any]] | None = None) -> None:
        self.name = "flight"
        self.children = children
        self.plays = plays
        self.spawn = spawn or {}
        self.entered: dict[str, threading.Event] = {r: threading.Event() for r in children}
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.in_call: dict[tuple[str, int], int] = {}
        self.log: list[tuple[str, str, int]] = []

    def complete(self, request: st.ModelRequest, cancel: st.CancelToken) -> st.ModelReply:
        role, attempt = request.role, request.attempt
        if role == "root":
            return self._root(request)
        with self.lock:
            self.log.append(("enter", role, attempt))
        self.entered[role].set()
        play = self.plays.get((role, attempt), "answer")
        try:
            if play == "block":
                assert cancel.wait(WAIT)
                raise st.Cancelled(cancel.reason)
            if play == "deaf":
                assert self.release.wait(WAIT)
            for other in play.partition(" after ")[2].split(","):
                if other:
                    assert self.entered[other].wait(WAIT)
            if play.startswith("crash"):
                raise RuntimeError(f"{role} crashed at attempt {attempt}")
            return st.ModelReply(content=f"{role} done")
        finally:
            with self.lock:
                self.log.append(("exit", role, attempt))

    def _root(self, request: st.ModelRequest) -> st.ModelReply:
        turn = st.ScriptTurn(request)
        if turn.turn == 0:
            return st.reply("", *[st.call("spawn_session", role=r, task=f"task {r}",
                                          **self.spawn.get(r, {})) for r in self.children])
        if turn.turn == 1:
            return st.reply("", st.call("wait_for_children"))
        ends = turn.result_json()["children"]
        return st.ModelReply(content="; ".join(f"{c['status']}/{c['reason']}" for c in ends))


def open_rt(db: Path, provider: Flight, clock: ManualClock, **limits: Any) -> st.Runtime:
    return st.Runtime.open(db, providers=[provider], clock=clock, lease_ttl=3600,
                           limits=st.Limits(**limits))


def kids(rt: st.Runtime, root: str, n: int, seen: Commits) -> dict[str, str]:
    found: dict[str, str] = seen.until(
        lambda: len(rt.children(root)) == n and {c.role: c.id for c in rt.children(root)})
    return found


def events(rt: st.Runtime, root: str, *types: str) -> list[tuple[str, str | None, dict[str, Any]]]:
    return [(e.type, e.model_session_id, e.payload) for e in rt.events(root_id=root)
            if e.type in types]


def named(found: list[tuple[str, str | None, dict[str, Any]]], ids: dict[str, str]) -> list[str]:
    """Events as 'TYPE role' lines (the parent's as 'TYPE root')."""
    by_id = {v: k for k, v in ids.items()}
    short = {"FR-EVT-SESS-RESTARTED": "restarted", "FR-EVT-SESS-STOPPED": "stopped",
             "FR-EVT-SESS-SCHED-DISPATCHED": "dispatched", "FR-EVT-SESS-GROUP-RESTART": "group",
             "FR-EVT-SESS-GROUP-STARTED": "group-started"}
    return [f"{short.get(t, t)} {by_id.get(sid or '', 'root')}" for t, sid, _ in found]


def dispatched_after(rt: st.Runtime, root: str, ids: dict[str, str], since: int) -> list[str]:
    by_id = {v: k for k, v in ids.items()}
    return [by_id[e.model_session_id or ""] for e in rt.events(root_id=root, after=since)
            if e.type == "FR-EVT-SESS-SCHED-DISPATCHED" and e.model_session_id in by_id]


def last_seq(rt: st.Runtime, root: str) -> int:
    return rt.events(root_id=root)[-1].seq


def root_turns_dispatched(rt: st.Runtime, root: str, seen: Commits, turns: int = 2) -> None:
    """Wait until the root's first ``turns`` runs were dispatched. Its second (the
    ``wait_for_children`` turn) is queued by the root's own commit after its spawns,
    which may land after its children have started, crashed and had their group
    restart begin: a count of dispatches that includes it must wait for it."""
    seen.until(lambda: len(rt.events(session_id=root,
                                     type_prefix="FR-EVT-SESS-SCHED-DISPATCHED")) >= turns)


# -- group order ---------------------------------------------------------------------------
def test_one_for_all_stops_in_reverse_start_order_then_starts_in_start_order(
    db_path: Path,
) -> None:
    clock = ManualClock()
    flight = Flight(["a", "b", "c"], {("a", 1): "crash after b,c", ("b", 1): "block",
                                      ("c", 1): "block"})
    with open_rt(db_path, flight, clock) as rt:
        seen = Commits(rt)
        root = rt.create_session("r", capabilities=["session.spawn"], child_strategy="one_for_all")
        ids = kids(rt, root, 3, seen)
        seen.until(lambda: len(events(rt, root, "FR-EVT-SESS-STOPPED")) == 2)
        root_turns_dispatched(rt, root, seen)
        rt.stats()  # a barrier: the group has armed its start
        before = last_seq(rt, root)
        clock.advance(0.49)
        assert rt.stats().dispatched == 5  # root's two turns, a, b, c: no new attempt yet...
        clock.advance(0.01)  # ... until a's back-off has passed
        done = rt.wait(root, timeout=WAIT)

        assert done.summary == "; ".join(["completed/completed"] * 3)
        order = named(events(rt, root, "FR-EVT-SESS-GROUP-RESTART", "FR-EVT-SESS-RESTARTED",
                             "FR-EVT-SESS-STOPPED", "FR-EVT-SESS-GROUP-STARTED"), ids)
        assert order == ["restarted a", "group root", "restarted c", "stopped c",
                         "restarted b", "stopped b", "group-started root"]
        (group,) = [p for t, _, p in events(rt, root, "FR-EVT-SESS-GROUP-RESTART")]
        assert group["members"] == [ids["a"], ids["b"], ids["c"]]
        assert group["stop_order"] == [ids["c"], ids["b"]]
        assert (group["delay"], group["restarts_in_period"], group["again"]) == (0.5, 1, False)
        assert [p["outcome"] for _, _, p in events(rt, root, "FR-EVT-SESS-STOPPED")] == [
            "stopped", "stopped"]
        assert dispatched_after(rt, root, ids, before) == ["a", "b", "c"]
        # c had left its call before b was even told to stop
        assert flight.log.index(("exit", "c", 1)) < flight.log.index(("exit", "b", 1))


def test_a_group_start_whose_dispatch_fails_to_commit_starts_again_in_order(
    db_path: Path,
) -> None:
    clock = ManualClock()
    flight = Flight(["a", "b", "c"], {("a", 1): "crash after b,c", ("b", 1): "block",
                                      ("c", 1): "block"})
    with open_rt(db_path, flight, clock) as rt:
        seen = Commits(rt)
        root = rt.create_session("r", capabilities=["session.spawn"], child_strategy="one_for_all")
        ids = kids(rt, root, 3, seen)
        seen.until(lambda: len(events(rt, root, "FR-EVT-SESS-STOPPED")) == 2)
        rt.stats()
        before = last_seq(rt, root)
        plan = FaultPlan().at("store.commit", times=1, error=disk_full)
        plan.attach_store(rt._store)  # the group's dispatch is the next commit: it fails
        clock.advance(0.5)
        rt.stats()
        assert plan.fired() == 1 and dispatched_after(rt, root, ids, before) == []
        clock.advance(0.5)  # the scheduler retries after its back-off
        done = rt.wait(root, timeout=WAIT)

        assert done.summary == "; ".join(["completed/completed"] * 3)
        assert dispatched_after(rt, root, ids, before) == ["a", "b", "c"]
        assert len(events(rt, root, "FR-EVT-SESS-GROUP-STARTED")) == 1


def test_rest_for_one_stops_and_restarts_only_the_crashed_child_and_the_younger_ones(
    db_path: Path,
) -> None:
    clock = ManualClock()
    flight = Flight(["a", "b", "c", "d"], {("a", 1): "deaf", ("b", 1): "crash after a,c,d",
                                           ("c", 1): "block", ("d", 1): "block"})
    with open_rt(db_path, flight, clock) as rt:
        seen = Commits(rt)
        root = rt.create_session("r", capabilities=["session.spawn"],
                                 child_strategy="rest_for_one")
        ids = kids(rt, root, 4, seen)
        seen.until(lambda: len(events(rt, root, "FR-EVT-SESS-STOPPED")) == 2)
        rt.stats()
        before = last_seq(rt, root)
        clock.advance(0.5)
        seen.until(lambda: len(dispatched_after(rt, root, ids, before)) == 3)
        flight.release.set()  # a, older, was never touched
        done = rt.wait(root, timeout=WAIT)

        assert done.summary == "; ".join(["completed/completed"] * 4)
        assert named(events(rt, root, "FR-EVT-SESS-STOPPED"), ids) == ["stopped d", "stopped c"]
        assert dispatched_after(rt, root, ids, before) == ["b", "c", "d"]
        assert [j.attempt for j in rt.jobs(ids["a"])] == [1]


def test_no_member_starts_until_a_sibling_ignoring_cancel_is_abandoned_at_its_shutdown_time(
    db_path: Path,
) -> None:
    clock = ManualClock()
    flight = Flight(["a", "b"], {("a", 1): "crash after b", ("b", 1): "deaf"})
    with open_rt(db_path, flight, clock) as rt:
        seen = Commits(rt)
        root = rt.create_session("r", capabilities=["session.spawn"], child_strategy="one_for_all")
        ids = kids(rt, root, 2, seen)
        try:
            seen.until(lambda: events(rt, root, "FR-EVT-SESS-GROUP-RESTART"))
            root_turns_dispatched(rt, root, seen)
            rt.stats()
            before = last_seq(rt, root)
            clock.advance(0.5)  # a's back-off has passed, but b has not stopped
            clock.advance(4.49)
            assert rt.stats().dispatched == 4 and dispatched_after(rt, root, ids, before) == []
            clock.advance(0.01)  # b's shutdown time (5 s from its stop) has passed
            seen.until(lambda: len(dispatched_after(rt, root, ids, before)) == 2)
            (stopped,) = [p for _, _, p in events(rt, root, "FR-EVT-SESS-STOPPED")]
            assert (stopped["outcome"], stopped["shutdown"], stopped["attempt"]) == (
                "abandoned", 5.0, 1)
            assert dispatched_after(rt, root, ids, before) == ["a", "b"]
            assert rt.stats().abandoned == 1  # b's old call is still in flight, fenced
        finally:
            flight.release.set()
        done = rt.wait(root, timeout=WAIT)
        assert done.summary == "completed/completed; completed/completed"
        seen.until(lambda: rt.stats().abandoned == 0)
        assert [(j.state, j.attempt) for j in rt.jobs(ids["b"])] == [("completed", 2)]


def test_a_brutal_kill_sibling_is_fenced_at_once_and_never_waited_for(db_path: Path) -> None:
    clock = ManualClock()
    flight = Flight(["a", "b"], {("a", 1): "crash after b", ("b", 1): "deaf"},
                    spawn={"b": {"shutdown": "brutal_kill"}})
    with open_rt(db_path, flight, clock) as rt:
        seen = Commits(rt)
        root = rt.create_session("r", capabilities=["session.spawn"], child_strategy="one_for_all")
        ids = kids(rt, root, 2, seen)
        try:
            assert rt.session(ids["b"]).shutdown == 0.0
            seen.until(lambda: events(rt, root, "FR-EVT-SESS-STOPPED"))
            (stopped,) = [p for _, _, p in events(rt, root, "FR-EVT-SESS-STOPPED")]
            assert (stopped["outcome"], stopped["shutdown"]) == ("killed", 0.0)
            rt.stats()
            clock.advance(0.5)
            seen.until(lambda: rt.session(ids["b"]).state == "completed")
        finally:
            flight.release.set()
        assert rt.wait(root, timeout=WAIT).summary == "completed/completed; completed/completed"


def test_a_child_crashing_again_while_its_group_starts_restarts_the_group_counted_once(
    db_path: Path,
) -> None:
    clock = ManualClock()
    flight = Flight(["a", "b"], {("a", 1): "crash", ("a", 2): "crash"})
    # one run at a time: b cannot start while a's restarted attempt runs
    with open_rt(db_path, flight, clock, max_concurrent_runs=1) as rt:
        seen = Commits(rt)
        root = rt.create_session("r", capabilities=["session.spawn"], child_strategy="one_for_all")
        ids = kids(rt, root, 2, seen)
        seen.until(lambda: len(events(rt, root, "FR-EVT-SESS-GROUP-RESTART")) == 1)
        rt.stats()
        clock.advance(0.5)
        seen.until(lambda: len(events(rt, root, "FR-EVT-SESS-GROUP-RESTART")) == 2)
        rt.stats()
        before = last_seq(rt, root)
        clock.advance(1.0)  # a's second back-off
        done = rt.wait(root, timeout=WAIT)

        assert done.summary == "completed/completed; completed/completed"
        groups = [p for _, _, p in events(rt, root, "FR-EVT-SESS-GROUP-RESTART")]
        assert [(g["again"], g["restarts_in_period"], g["delay"]) for g in groups] == [
            (False, 1, 0.5), (True, 2, 1.0)]
        assert dispatched_after(rt, root, ids, before) == ["a", "b"]
        assert [(j.state, j.attempt) for j in rt.jobs(ids["a"])] == [("completed", 3)]
        assert [(j.state, j.attempt) for j in rt.jobs(ids["b"])] == [("completed", 1)]


# -- supervisor intensity ---------------------------------------------------------------------
def test_a_group_restart_counts_once_in_the_parents_supervisor_intensity(db_path: Path) -> None:
    clock = ManualClock()
    flight = Flight(["a", "b", "c"], {("a", 1): "crash after b,c", ("b", 1): "block",
                                      ("c", 1): "block"})
    with open_rt(db_path, flight, clock) as rt:
        seen = Commits(rt)
        root = rt.create_session("r", capabilities=["session.spawn"], child_strategy="one_for_all",
                                 supervisor=st.SupervisorPolicy(max_restarts=1, period=60))
        kids(rt, root, 3, seen)
        seen.until(lambda: len(events(rt, root, "FR-EVT-SESS-STOPPED")) == 2)
        rt.stats()
        clock.advance(0.5)
        done = rt.wait(root, timeout=WAIT)
        assert (done.state, done.summary) == ("completed", "; ".join(["completed/completed"] * 3))
        (group,) = [p for _, _, p in events(rt, root, "FR-EVT-SESS-GROUP-RESTART")]
        assert group["restarts_in_period"] == 1


def test_a_parent_past_its_supervisor_intensity_gives_up_and_its_parent_is_told_once(
    db_path: Path,
) -> None:
    clock = ManualClock()
    entered = {r: threading.Event() for r in ("x", "y")}

    def policy(turn: st.ScriptTurn) -> Any:
        if turn.role == "root":
            if turn.turn == 0:
                return st.reply("", st.call("spawn_session", role="mid", task="m",
                                            capabilities=["session.spawn"],
                                            supervisor={"max_restarts": 1, "period": 60}))
            if turn.turn == 1:
                return st.reply("", st.call("wait_for_children"))
            (c,) = turn.result_json()["children"]
            return f"{c['status']}/{c['reason']}"
        if turn.role == "mid":
            if turn.turn == 0:
                return st.reply("", st.call("spawn_session", role="x", task="x"),
                                st.call("spawn_session", role="y", task="y"))
            if turn.turn == 1:
                return st.reply("", st.call("wait_for_children"))
            return "mid done"  # never reached: it gives up first
        entered[turn.role].set()
        if turn.request.attempt == 1:
            assert entered["x"].wait(WAIT) and entered["y"].wait(WAIT)
            raise RuntimeError(f"{turn.role} crashed")  # both children crash once
        return "fine"

    with st.Runtime.open(db_path, providers=[st.ScriptedProvider(policy)], clock=clock,
                         lease_ttl=3600) as rt:
        root = rt.create_session("r", capabilities=["session.spawn"])
        done = rt.wait(root, timeout=WAIT)

        assert (done.state, done.summary) == ("completed", "failed/restart_intensity")
        (mid,) = rt.children(root)
        assert (mid.state, mid.reason) == ("failed", "restart_intensity")
        (gave_up,) = [p for _, _, p in events(rt, root, "FR-EVT-SESS-SUPERVISOR-GAVE-UP")]
        assert (gave_up["restarts_in_period"], gave_up["max_restarts"]) == (2, 1)
        x, y = rt.children(mid.id)
        assert [(c.state, c.reason) for c in (x, y)] == [("cancelled", "parent_ended")] * 2
        torn = [sid for t, sid, p in events(rt, root, "FR-EVT-SESS-STATE")
                if p["to_state"] == "cancelled"]
        assert torn == [y.id, x.id]  # reverse start order
        assert [p.sender_id for p in rt.mailbox(root)] == [mid.id]  # told exactly once
        assert len([1 for _, sid, _ in events(rt, root, "FR-EVT-SESS-SPAWN-ANNOUNCED")
                    if sid == mid.id]) == 1
        assert rt.jobs(states=["queued", "running"]) == []  # nothing left to restart


@pytest.mark.parametrize(("log", "now", "expected"), [
    ((), 100.0, (False, 1)),
    ((95.0,), 100.0, (False, 2)),
    ((95.0, 99.0), 100.0, (True, 3)),  # max 2: a third in the period gives up
    ((30.0, 99.0), 100.0, (False, 2)),  # 30 s is outside the 60 s period
    ((40.0,), 100.0, (False, 1)),  # exactly one period ago: no longer counted
])
def test_supervisor_decision_table(log: tuple[float, ...], now: float,
                                   expected: tuple[bool, int]) -> None:
    decision = decide_supervisor(2, 60.0, log, now)
    assert (decision.give_up, decision.restarts_in_period) == expected


# -- teardown -------------------------------------------------------------------------------
def test_cancelling_a_parent_stops_its_children_in_reverse_start_order(db_path: Path) -> None:
    clock = ManualClock()
    flight = Flight(["a", "b", "c"], {(r, 1): "block" for r in "abc"})
    with open_rt(db_path, flight, clock) as rt:
        seen = Commits(rt)
        root = rt.create_session("r", capabilities=["session.spawn"])
        ids = kids(rt, root, 3, seen)
        for role in "abc":
            assert flight.entered[role].wait(WAIT)
        seen.until(lambda: rt.session(root).state == "waiting")
        rt.cancel(root, note="enough")
        seen.until(lambda: len(events(rt, root, "FR-EVT-SESS-STOPPED")) == 3)
        by_id = {v: k for k, v in ids.items()}
        torn = [by_id.get(sid or "", "root") for t, sid, p in events(rt, root, "FR-EVT-SESS-STATE")
                if p["to_state"] == "cancelled"]
        assert torn == ["root", "c", "b", "a"]
        assert {by_id[sid or ""]: (p["outcome"], p["reason"]) for _, sid, p in
                events(rt, root, "FR-EVT-SESS-STOPPED")} == dict.fromkeys(
                    "abc", ("stopped", "parent_ended"))
        assert [rt.session(ids[r]).reason for r in "abc"] == ["parent_ended"] * 3
        root_state = rt.session(root)
        assert (root_state.state, root_state.reason) == ("cancelled", "cancelled_by_host")


# -- significant children and auto_shutdown ------------------------------------------------
def test_any_significant_child_ending_shuts_its_parent_down_with_its_answer(
    db_path: Path,
) -> None:
    clock = ManualClock()
    flight = Flight(["helper", "worker"], {("helper", 1): "block"},
                    spawn={"worker": {"significant": True}})
    with open_rt(db_path, flight, clock) as rt:
        root = rt.create_session("r", capabilities=["session.spawn"],
                                 auto_shutdown="any_significant")
        done = rt.wait(root, timeout=WAIT)
        assert (done.state, done.reason, done.summary) == ("completed", "auto_shutdown",
                                                           "worker done")
        helper, worker = rt.children(root)
        assert (worker.significant, helper.significant) == (True, False)
        assert (helper.state, helper.reason) == ("cancelled", "parent_ended")
        (auto,) = [p for _, _, p in events(rt, root, "FR-EVT-SESS-AUTO-SHUTDOWN")]
        assert (auto["child_id"], auto["child_state"]) == (worker.id, "completed")


def test_all_significant_waits_for_the_last_significant_child(db_path: Path) -> None:
    clock = ManualClock()
    # w1 ends only once w2 exists: as in OTP, all_significant means all live ones, so a
    # last significant child ending before its sibling is spawned would end the parent
    flight = Flight(["w1", "w2"], {("w1", 1): "answer after w2", ("w2", 1): "deaf"},
                    spawn={"w1": {"significant": True}, "w2": {"significant": True}})
    with open_rt(db_path, flight, clock) as rt:
        seen = Commits(rt)
        root = rt.create_session("r", capabilities=["session.spawn"],
                                 auto_shutdown="all_significant")
        ids = kids(rt, root, 2, seen)
        try:
            seen.until(lambda: rt.session(ids["w1"]).state == "completed")
            assert not rt.session(root).terminal
        finally:
            flight.release.set()
        done = rt.wait(root, timeout=WAIT)
        assert (done.state, done.reason, done.summary) == ("completed", "auto_shutdown", "w2 done")


def test_a_significant_child_failing_fails_its_parent_and_a_cancelled_one_does_nothing(
    db_path: Path,
) -> None:
    clock = ManualClock()
    flight = Flight(["w"], {("w", 1): "crash"}, spawn={"w": {"significant": True,
                                                          "restart": "temporary"}})
    with open_rt(db_path, flight, clock) as rt:
        root = rt.create_session("r", capabilities=["session.spawn"],
                                 auto_shutdown="any_significant")
        done = rt.wait(root, timeout=WAIT)
        assert (done.state, done.reason) == ("failed", "auto_shutdown")

    db2 = db_path.with_name("second.db")
    flight = Flight(["w"], {("w", 1): "block"}, spawn={"w": {"significant": True}})
    with open_rt(db2, flight, ManualClock()) as rt:
        seen = Commits(rt)
        root = rt.create_session("r", capabilities=["session.spawn"],
                                 auto_shutdown="any_significant")
        ids = kids(rt, root, 1, seen)
        assert flight.entered["w"].wait(WAIT)
        rt.cancel(ids["w"])
        done = rt.wait(root, timeout=WAIT)
        assert (done.state, done.summary) == ("completed", "cancelled/cancelled_by_host")


def test_spawn_settings_are_validated_and_kept(db_path: Path) -> None:
    spawned: list[Any] = []

    def policy(turn: st.ScriptTurn) -> Any:
        if turn.role == "root" and turn.turn == 0:
            return st.reply("", st.call(
                "spawn_session", role="w", task="t", restart="temporary",
                child_strategy="rest_for_one", supervisor={"max_restarts": 2, "period": 10},
                auto_shutdown="all_significant", shutdown=1.5, keep_open=True),
                st.call("spawn_session", role="bad", task="t", significant=True),
                st.call("spawn_session", role="bad", task="t", significant=True,
                        restart="permanent"),
                st.call("spawn_session", role="bad", task="t", shutdown=-1))
        if turn.role == "root":
            spawned.extend(turn.tool_results)
            return "done"
        return "ok"

    with st.Runtime.open(db_path, providers=[st.ScriptedProvider(policy)]) as rt:
        root = rt.create_session("r", capabilities=["session.spawn"])
        assert rt.wait(root, timeout=WAIT).state == "completed"
        (w,) = rt.children(root)
        assert (w.restart, w.child_strategy, w.auto_shutdown, w.shutdown, w.keep_open) == (
            "temporary", "rest_for_one", "all_significant", 1.5, True)
        assert w.supervisor == st.SupervisorPolicy(max_restarts=2, period=10)
        _, not_significant_here, permanent, negative = (m.content for m in spawned)
        assert "invalid_input" in not_significant_here and "auto_shutdown" in not_significant_here
        assert "invalid_args" in permanent or "invalid arguments" in permanent
        assert "invalid arguments" in negative


def test_create_session_refuses_bad_supervision_settings(db_path: Path) -> None:
    with st.Runtime.open(db_path, providers=[st.ScriptedProvider(lambda t: "x")]) as rt:
        for bad in ({"auto_shutdown": "sometimes"}, {"shutdown": -1}, {"shutdown": "gently"},
                    {"supervisor": {"max_restarts": 1}}, {"keep_open": "yes"}):
            with pytest.raises(st.InvalidInput):
                rt.create_session("t", **bad)
        with pytest.raises(st.InvalidInput):
            st.SupervisorPolicy(max_restarts=-1)


@pytest.mark.parametrize(("policy", "significant", "state", "others", "due"), [
    ("never", True, "completed", 0, False),
    ("any_significant", False, "completed", 0, False),
    ("any_significant", True, "completed", 3, True),
    ("any_significant", True, "failed", 0, True),
    ("any_significant", True, "cancelled", 0, False),
    ("all_significant", True, "completed", 1, False),
    ("all_significant", True, "completed", 0, True),
])
def test_auto_shutdown_decision_table(policy: str, significant: bool, state: str, others: int,
                                      due: bool) -> None:
    assert auto_shutdown_due(policy, significant, state, others) is due

