"""Supervision: a crashed session restarts from its checkpoint, under a restart intensity,
with exponential back-off, by its restart type and its parent's strategy.

Time is a ManualClock: a restart is re-queued with ``not_before = now + delay`` and runs
only when the test advances the clock, so every back-off is asserted, never waited out.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import sessiontree as st
from sessiontree.testing import Commits, FaultPlan, InjectedFault, ManualClock

WAIT = 10.0


# -- helpers ------------------------------------------------------------------------------


class ByRole:
    """A fault hook that adds the session's role to the facts, so a FaultPlan can match
    on ``role=...`` (children's ids are not known before they are spawned)."""

    def __init__(self, plan: FaultPlan) -> None:
        self.plan = plan
        self.store: Any = None

    def __call__(self, step: str, facts: dict[str, Any]) -> None:
        if self.store is not None and "session_id" in facts:
            facts = {**facts, "role": self.store.session(facts["session_id"]).role}
        self.plan(step, facts)


def open_rt(
    db: Path, policy: Callable[[st.ScriptTurn], Any], *, clock: ManualClock,
    fault_hook: Any = None, restart: st.RestartPolicy | None = None, tools: Iterable[st.Tool] = (),
) -> st.Runtime:
    limits = st.Limits(restart=restart or st.RestartPolicy())
    rt = st.Runtime.open(db, providers=[st.ScriptedProvider(policy)], tools=tools, limits=limits,
                         clock=clock, fault_hook=fault_hook, lease_ttl=3600)
    if isinstance(fault_hook, ByRole):
        fault_hook.store = rt._store
    return rt


def payloads(rt: st.Runtime, sid: str, event_type: str) -> list[dict[str, Any]]:
    return [e.payload for e in rt.events(session_id=sid, type_prefix=event_type)
            if e.type == event_type]


def restarted(rt: st.Runtime, sid: str) -> list[dict[str, Any]]:
    return payloads(rt, sid, "FR-EVT-SESS-RESTARTED")


def jobs(rt: st.Runtime, sid: str) -> list[tuple[str, int, str | None]]:
    return [(j.state, j.attempt, j.reason) for j in rt.jobs(session_id=sid)]


def answer(turn: st.ScriptTurn) -> str:
    return f"answered {turn.task}"


def tree_policy(
    roles: list[str], child: Callable[[st.ScriptTurn], Any], caps: tuple[str, ...] = (),
) -> Callable[..., Any]:
    """A root that spawns one child per role (asking for ``caps``), waits for all, then
    reports their ends."""

    def policy(turn: st.ScriptTurn) -> Any:
        if turn.role != "root":
            return child(turn)
        if turn.turn == 0:
            return st.reply("", *[st.call("spawn_session", role=r, task=f"task {r}",
                                          **({"capabilities": list(caps)} if caps else {}))
                                  for r in roles])
        if turn.turn == 1:
            return st.reply("", st.call("wait_for_children"))
        ends = turn.result_json()["children"]
        return "; ".join(f"{c['status']}/{c['reason']}" for c in ends)

    return policy


def children_by_role(rt: st.Runtime, root: str) -> dict[str, str]:
    return {c.role: c.id for c in rt.children(root)}


# -- a crash restarts from the checkpoint ---------------------------------------------------
def test_crash_in_provider_call_restarts_the_session_with_next_attempt(db_path: Path) -> None:
    clock = ManualClock()
    plan = FaultPlan().at("provider.before", times=1)
    with open_rt(db_path, answer, clock=clock, fault_hook=plan) as rt:
        seen = Commits(rt)
        sid = rt.create_session("t1")
        seen.until(lambda: restarted(rt, sid))
        clock.advance(0.5)
        done = rt.wait(sid, timeout=WAIT)

        assert (done.state, done.summary) == ("completed", "answered t1")
        assert jobs(rt, sid) == [("completed", 2, None)]
        crashed = payloads(rt, sid, "FR-EVT-SESS-CRASHED")
        assert [(c["error_type"], c["attempt"]) for c in crashed] == [("InjectedFault", 1)]
        (again,) = restarted(rt, sid)
        assert (again["attempt"], again["delay"], again["restarts_in_period"]) == (2, 0.5, 1)
        assert [m.role for m in rt.messages(sid)] == ["user", "assistant"]


class LookupArgs(BaseModel):
    key: str


def test_restarted_run_resumes_from_the_checkpoint_not_from_the_start(db_path: Path) -> None:
    clock = ManualClock()
    lookups: list[str] = []
    asked: Counter[int] = Counter()

    @st.tool("lookup", LookupArgs, effect="read_only")
    def lookup(ctx: st.ToolContext, args: LookupArgs) -> str:
        lookups.append(args.key)
        return f"value of {args.key}"

    def policy(turn: st.ScriptTurn) -> Any:
        asked[turn.turn] += 1
        if turn.turn == 0:
            return st.reply("", st.call("lookup", key="k"))
        if turn.request.attempt == 1:
            raise RuntimeError("provider hiccup")  # the second model turn crashes once
        return f"saw {turn.tool_results[0].content}"

    with open_rt(db_path, policy, clock=clock, tools=[lookup]) as rt:
        seen = Commits(rt)
        sid = rt.create_session("t", capabilities=["tool:lookup"])
        seen.until(lambda: restarted(rt, sid))
        clock.advance(0.5)
        done = rt.wait(sid, timeout=WAIT)

        assert (done.state, done.summary) == ("completed", "saw value of k")
        assert lookups == ["k"]  # the tool's result was checkpointed: not run again
        assert asked == {0: 1, 1: 2}  # turn 0 was not asked again
        assert [m.role for m in rt.messages(sid)] == ["user", "assistant", "tool", "assistant"]
        assert jobs(rt, sid) == [("completed", 1, None), ("completed", 2, None)]


# -- back-off and intensity -----------------------------------------------------------------
def crash_and_advance(rt: st.Runtime, clock: ManualClock, sid: str, crashes: int) -> list[float]:
    """Let ``crashes`` crashes happen; after each, check that nothing runs before its
    back-off is due, then advance exactly to it. Returns the armed delays."""
    seen = Commits(rt)
    delays = []
    for n in range(1, crashes + 1):
        seen.until(lambda n=n: len(restarted(rt, sid)) == n)
        dispatched = rt.stats().dispatched  # also a barrier: the scheduler armed its timer
        (delay,) = clock.pending()
        delays.append(delay)
        (job,) = rt.jobs(session_id=sid)
        assert (job.state, job.attempt, job.not_before) == ("queued", n + 1, clock.now() + delay)
        clock.advance(delay - 0.01)
        assert rt.stats().dispatched == dispatched
        assert rt.jobs(session_id=sid)[0].state == "queued"
        clock.advance(0.01)
    return delays


def test_backoff_between_restarts_follows_the_default_policy(db_path: Path) -> None:
    clock = ManualClock()
    plan = FaultPlan().at("provider.before", times=3)
    with open_rt(db_path, answer, clock=clock, fault_hook=plan) as rt:
        sid = rt.create_session("t")
        assert crash_and_advance(rt, clock, sid, 3) == [0.5, 1.0, 2.0]
        assert rt.wait(sid, timeout=WAIT).state == "completed"
        assert [r["delay"] for r in restarted(rt, sid)] == [0.5, 1.0, 2.0]


def test_backoff_grows_by_the_factor_and_stops_at_the_cap(db_path: Path) -> None:
    clock = ManualClock()
    policy = st.RestartPolicy(max_restarts=4, backoff_initial=1, backoff_factor=3, backoff_max=5)
    plan = FaultPlan().at("provider.before", times=4)
    with open_rt(db_path, answer, clock=clock, fault_hook=plan, restart=policy) as rt:
        sid = rt.create_session("t")
        assert crash_and_advance(rt, clock, sid, 4) == [1.0, 3.0, 5.0, 5.0]
        assert rt.wait(sid, timeout=WAIT).state == "completed"


def test_exactly_max_restarts_crashes_within_the_period_still_complete(db_path: Path) -> None:
    clock = ManualClock()
    plan = FaultPlan().at("provider.before", times=3)  # default max_restarts=3
    with open_rt(db_path, answer, clock=clock, fault_hook=plan) as rt:
        sid = rt.create_session("t")
        crash_and_advance(rt, clock, sid, 3)
        done = rt.wait(sid, timeout=WAIT)
        assert (done.state, done.reason) == ("completed", "completed")
        assert [r["restarts_in_period"] for r in restarted(rt, sid)] == [1, 2, 3]
        assert jobs(rt, sid) == [("completed", 4, None)]


def test_one_crash_past_max_restarts_fails_the_session_with_restart_intensity(
    db_path: Path,
) -> None:
    clock = ManualClock()
    plan = FaultPlan().at("provider.before", times=4)
    with open_rt(db_path, answer, clock=clock, fault_hook=plan) as rt:
        sid = rt.create_session("t")
        crash_and_advance(rt, clock, sid, 3)
        done = rt.wait(sid, timeout=WAIT)

        assert (done.state, done.reason) == ("failed", "restart_intensity")
        assert jobs(rt, sid) == [("failed", 4, "restart_intensity")]
        assert len(payloads(rt, sid, "FR-EVT-SESS-CRASHED")) == 4
        assert len(restarted(rt, sid)) == 3
        (failed,) = payloads(rt, sid, "FR-EVT-SESS-SCHED-FAILED")
        assert (failed["attempt"], failed["reason"]) == (4, "restart_intensity")
        assert clock.pending() == []


def test_restarts_older_than_the_period_do_not_count(db_path: Path) -> None:
    clock = ManualClock()
    policy = st.RestartPolicy(max_restarts=1, period=10)
    plan = FaultPlan().at("provider.before", times=3)
    with open_rt(db_path, answer, clock=clock, fault_hook=plan, restart=policy) as rt:
        seen = Commits(rt)
        sid = rt.create_session("t")
        for n in (1, 2, 3):
            seen.until(lambda n=n: len(restarted(rt, sid)) == n)
            rt.stats()  # barrier: the back-off timer is armed
            clock.advance(11)  # the next attempt (and its crash) comes after the period
        done = rt.wait(sid, timeout=WAIT)

        assert done.state == "completed"
        assert [(r["restarts_in_period"], r["delay"]) for r in restarted(rt, sid)] == [(1, 0.5)] * 3


def test_child_past_its_intensity_announces_failed_restart_intensity_to_its_parent(
    db_path: Path,
) -> None:
    clock = ManualClock()
    hook = ByRole(FaultPlan().at("provider.before", times=2, role="worker"))
    policy = tree_policy(["worker"], answer)
    with open_rt(db_path, policy, clock=clock, fault_hook=hook,
                 restart=st.RestartPolicy(max_restarts=1)) as rt:
        seen = Commits(rt)
        root = rt.create_session("r", capabilities=["session.spawn"])
        seen.until(lambda: rt.children(root) and restarted(rt, rt.children(root)[0].id))
        rt.stats()
        clock.advance(0.5)
        done = rt.wait(root, timeout=WAIT)

        (child,) = rt.children(root)
        assert (child.state, child.reason) == ("failed", "restart_intensity")
        (announce,) = rt.mailbox(root)
        assert (announce.kind, announce.sender_id) == ("announce_back", child.id)
        assert (announce.body["status"], announce.body["reason"]) == ("failed", "restart_intensity")
        assert (done.state, done.summary) == ("completed", "failed/restart_intensity")


# -- restart types --------------------------------------------------------------------------
def not_retryable(step: str, facts: dict[str, Any]) -> BaseException:
    return InjectedFault(step, facts, retryable=False)


def test_temporary_session_fails_crashed_at_its_first_crash(db_path: Path) -> None:
    clock = ManualClock()
    plan = FaultPlan().at("provider.before", times=1)
    with open_rt(db_path, answer, clock=clock, fault_hook=plan) as rt:
        sid = rt.create_session("t", restart="temporary")
        done = rt.wait(sid, timeout=WAIT)

        assert (done.state, done.reason) == ("failed", "crashed")
        assert jobs(rt, sid) == [("failed", 1, "crashed")]
        assert len(payloads(rt, sid, "FR-EVT-SESS-CRASHED")) == 1
        assert restarted(rt, sid) == []


def test_transient_session_fails_crashed_on_a_non_retryable_error(db_path: Path) -> None:
    clock = ManualClock()
    plan = FaultPlan().at("provider.before", times=1, error=not_retryable)
    with open_rt(db_path, answer, clock=clock, fault_hook=plan) as rt:
        sid = rt.create_session("t", restart="transient")
        done = rt.wait(sid, timeout=WAIT)

        assert (done.state, done.reason) == ("failed", "crashed")
        assert restarted(rt, sid) == []


def test_transient_session_restarts_on_a_retryable_error(db_path: Path) -> None:
    clock = ManualClock()
    plan = FaultPlan().at("provider.before", times=1)
    with open_rt(db_path, answer, clock=clock, fault_hook=plan) as rt:
        seen = Commits(rt)
        sid = rt.create_session("t", restart="transient")
        seen.until(lambda: restarted(rt, sid))
        clock.advance(0.5)

        assert rt.wait(sid, timeout=WAIT).state == "completed"
        assert jobs(rt, sid) == [("completed", 2, None)]


def test_permanent_session_restarts_even_on_a_non_retryable_error(db_path: Path) -> None:
    clock = ManualClock()
    plan = FaultPlan().at("provider.before", times=1, error=not_retryable)
    with open_rt(db_path, answer, clock=clock, fault_hook=plan) as rt:
        seen = Commits(rt)
        sid = rt.create_session("t", restart="permanent")
        seen.until(lambda: restarted(rt, sid))
        clock.advance(0.5)

        assert rt.wait(sid, timeout=WAIT).state == "completed"
        assert jobs(rt, sid) == [("completed", 2, None)]


# -- where a crash comes from -----------------------------------------------------------------
def test_crash_inside_a_tool_restarts_the_session_and_reruns_the_read_only_call(
    db_path: Path,
) -> None:
    clock = ManualClock()
    lookups: list[int] = []

    @st.tool("lookup", LookupArgs, effect="read_only", on_error="crash")
    def lookup(ctx: st.ToolContext, args: LookupArgs) -> str:
        lookups.append(ctx.attempt)
        if ctx.attempt == 1:
            raise RuntimeError("tool bug")  # declared on_error="crash": the actor crashes
        return "v"

    def policy(turn: st.ScriptTurn) -> Any:
        return st.reply("", st.call("lookup", key="k")) if turn.turn == 0 else "done"

    with open_rt(db_path, policy, clock=clock, tools=[lookup]) as rt:
        seen = Commits(rt)
        sid = rt.create_session("t", capabilities=["tool:lookup"])
        seen.until(lambda: restarted(rt, sid))
        clock.advance(0.5)
        done = rt.wait(sid, timeout=WAIT)

        assert done.state == "completed"
        assert lookups == [1, 2]
        (crash,) = payloads(rt, sid, "FR-EVT-SESS-CRASHED")
        assert (crash["error_type"], crash["error"]) == ("RuntimeError", "tool bug")
        (rec,) = rt.tool_calls(sid)
        assert (rec.state, rec.attempts) == ("done", 2)


def test_crash_at_the_tool_fault_point_restarts_the_session(db_path: Path) -> None:
    clock = ManualClock()
    ran: list[str] = []

    @st.tool("lookup", LookupArgs, effect="idempotent")
    def lookup(ctx: st.ToolContext, args: LookupArgs) -> str:
        ran.append(ctx.idempotency_key)
        return "v"

    def policy(turn: st.ScriptTurn) -> Any:
        return st.reply("", st.call("lookup", key="k")) if turn.turn == 0 else "done"

    plan = FaultPlan().at("tool.before", times=1, tool="lookup")
    with open_rt(db_path, policy, clock=clock, tools=[lookup], fault_hook=plan) as rt:
        seen = Commits(rt)
        sid = rt.create_session("t", capabilities=["tool:lookup"])
        seen.until(lambda: restarted(rt, sid))
        clock.advance(0.5)

        assert rt.wait(sid, timeout=WAIT).state == "completed"
        assert plan.fired("tool.before") == 1
        (rec,) = rt.tool_calls(sid)
        assert ran == [rec.idempotency_key]  # the fault came before the tool body
        assert (rec.state, rec.attempts) == ("done", 2)


def test_the_actor_itself_raising_restarts_the_session(db_path: Path) -> None:
    clock = ManualClock()
    plan = FaultPlan().at("actor.run", times=1)
    with open_rt(db_path, answer, clock=clock, fault_hook=plan) as rt:
        seen = Commits(rt)
        sid = rt.create_session("t")
        seen.until(lambda: restarted(rt, sid))
        clock.advance(0.5)

        assert rt.wait(sid, timeout=WAIT).state == "completed"
        assert jobs(rt, sid) == [("completed", 2, None)]
        (crash,) = payloads(rt, sid, "FR-EVT-SESS-CRASHED")
        assert crash["attempt"] == 1


# -- strategies over a parent's children -----------------------------------------------------
class Gates:
    """Per-role events: ``entered[role]`` is set when its first attempt reaches the
    provider, which then blocks until ``release[role]`` is set."""

    def __init__(self, roles: Iterable[str]) -> None:
        self.entered = {r: threading.Event() for r in roles}
        self.release = {r: threading.Event() for r in roles}

    def block_first_attempt(self, turn: st.ScriptTurn) -> None:
        if turn.role in self.entered and turn.request.attempt == 1:
            self.entered[turn.role].set()
            assert self.release[turn.role].wait(WAIT)

    def open_all(self) -> None:
        for event in self.release.values():
            event.set()


def test_one_for_all_restarts_a_running_sibling_when_a_child_crashes(db_path: Path) -> None:
    clock = ManualClock()
    gates = Gates(["b"])

    def child(turn: st.ScriptTurn) -> Any:
        if turn.role == "a" and turn.request.attempt == 1:
            assert gates.entered["b"].wait(WAIT)  # a crashes only while b is in flight
        gates.block_first_attempt(turn)
        return answer(turn)

    hook = ByRole(FaultPlan().at("provider.after", times=1, role="a"))
    with open_rt(db_path, tree_policy(["a", "b"], child), clock=clock, fault_hook=hook) as rt:
        seen = Commits(rt)
        root = rt.create_session("r", capabilities=["session.spawn"],
                                 child_strategy="one_for_all")
        try:
            kids = seen.until(lambda: len(children_by_role(rt, root)) == 2
                              and children_by_role(rt, root))
            seen.until(lambda: restarted(rt, kids["b"]))
        finally:
            gates.open_all()
        rt.stats()
        clock.advance(0.5)
        done = rt.wait(root, timeout=WAIT)

        assert (done.state, done.summary) == ("completed", "completed/completed; completed/completed")
        (b_restart,) = restarted(rt, kids["b"])
        assert (b_restart["strategy"], b_restart["cause_session_id"]) == ("one_for_all", kids["a"])
        # the crashed child's back-off delays the whole group: b does not run ahead of a
        assert (b_restart["attempt"], b_restart["delay"]) == (2, 0.5)
        assert jobs(rt, kids["b"]) == [("completed", 2, None)]
        assert jobs(rt, kids["a"]) == [("completed", 2, None)]
        assert rt.session(kids["b"]).summary == "answered task b"


def test_rest_for_one_restarts_only_the_younger_siblings(db_path: Path) -> None:
    clock = ManualClock()
    gates = Gates(["a", "c"])

    def child(turn: st.ScriptTurn) -> Any:
        if turn.role == "b" and turn.request.attempt == 1:
            assert gates.entered["a"].wait(WAIT) and gates.entered["c"].wait(WAIT)
        gates.block_first_attempt(turn)
        return answer(turn)

    hook = ByRole(FaultPlan().at("provider.after", times=1, role="b"))
    with open_rt(db_path, tree_policy(["a", "b", "c"], child), clock=clock, fault_hook=hook) as rt:
        seen = Commits(rt)
        root = rt.create_session("r", capabilities=["session.spawn"],
                                 child_strategy="rest_for_one")
        try:
            kids = seen.until(lambda: len(children_by_role(rt, root)) == 3
                              and children_by_role(rt, root))
            seen.until(lambda: restarted(rt, kids["c"]))
        finally:
            gates.open_all()
        rt.stats()
        clock.advance(0.5)
        done = rt.wait(root, timeout=WAIT)

        assert done.state == "completed"
        assert [c.state for c in rt.children(root)] == ["completed"] * 3
        assert restarted(rt, kids["a"]) == []
        assert jobs(rt, kids["a"]) == [("completed", 1, None)]
        (c_restart,) = restarted(rt, kids["c"])
        assert (c_restart["strategy"], c_restart["cause_session_id"]) == ("rest_for_one", kids["b"])
        assert jobs(rt, kids["c"]) == [("completed", 2, None)]
        assert jobs(rt, kids["b"]) == [("completed", 2, None)]


def test_one_for_all_escalation_cancels_live_siblings_with_sibling_failed(db_path: Path) -> None:
    clock = ManualClock()
    gates = Gates(["b"])

    def child(turn: st.ScriptTurn) -> Any:
        if turn.role == "a":
            assert gates.entered["b"].wait(WAIT)
        gates.block_first_attempt(turn)
        return answer(turn)

    hook = ByRole(FaultPlan().at("provider.after", times=1, role="a"))
    with open_rt(db_path, tree_policy(["a", "b"], child), clock=clock, fault_hook=hook,
                 restart=st.RestartPolicy(max_restarts=0)) as rt:
        seen = Commits(rt)
        root = rt.create_session("r", capabilities=["session.spawn"],
                                 child_strategy="one_for_all")
        try:
            kids = seen.until(lambda: len(children_by_role(rt, root)) == 2
                              and children_by_role(rt, root))
            seen.until(lambda: rt.session(kids["b"]).terminal)
        finally:
            gates.open_all()
        done = rt.wait(root, timeout=WAIT)

        a, b = rt.session(kids["a"]), rt.session(kids["b"])
        assert (a.state, a.reason) == ("failed", "restart_intensity")
        assert (b.state, b.reason) == ("cancelled", "sibling_failed")
        assert jobs(rt, kids["b"]) == [("cancelled", 1, "sibling_failed")]
        assert (done.state, done.summary) == (
            "completed", "failed/restart_intensity; cancelled/sibling_failed")


@pytest.mark.parametrize("strategy", ["one_for_one", "rest_for_one"])
def test_other_strategies_leave_an_older_running_sibling_alone(db_path: Path, strategy: str) -> None:
    clock = ManualClock()
    gates = Gates(["a"])

    def child(turn: st.ScriptTurn) -> Any:
        if turn.role == "b" and turn.request.attempt == 1:
            assert gates.entered["a"].wait(WAIT)
        gates.block_first_attempt(turn)
        return answer(turn)

    hook = ByRole(FaultPlan().at("provider.after", times=1, role="b"))
    with open_rt(db_path, tree_policy(["a", "b"], child), clock=clock, fault_hook=hook) as rt:
        seen = Commits(rt)
        root = rt.create_session("r", capabilities=["session.spawn"], child_strategy=strategy)
        try:
            kids = seen.until(lambda: len(children_by_role(rt, root)) == 2
                              and children_by_role(rt, root))
            seen.until(lambda: restarted(rt, kids["b"]))
        finally:
            gates.open_all()
        rt.stats()
        clock.advance(0.5)

        assert rt.wait(root, timeout=WAIT).state == "completed"
        assert restarted(rt, kids["a"]) == []
        assert jobs(rt, kids["a"]) == [("completed", 1, None)]


class SendArgs(BaseModel):
    to: str


def test_a_sibling_restarted_inside_a_tool_resumes_with_its_result_and_never_reruns_it(
    db_path: Path,
) -> None:
    clock = ManualClock()
    in_tool, release = threading.Event(), threading.Event()
    sent: list[str] = []

    @st.tool("send", SendArgs, effect="side_effecting")
    def send(ctx: st.ToolContext, args: SendArgs) -> str:
        sent.append(ctx.call_id)
        in_tool.set()
        assert release.wait(WAIT)  # a slow side effect that does not watch for cancellation
        return f"sent to {args.to}"

    def child(turn: st.ScriptTurn) -> Any:
        if turn.role == "a":
            if turn.request.attempt == 1:
                assert in_tool.wait(WAIT)  # a crashes while b is inside its tool
            return answer(turn)
        if turn.turn == 0:
            return st.reply("", st.call("send", to="bob"))
        results = [m.content for m in turn.tool_results]
        return f"b saw {results}"

    hook = ByRole(FaultPlan().at("provider.after", times=1, role="a"))
    with open_rt(db_path, tree_policy(["a", "b"], child, ("tool:send",)), clock=clock,
                 fault_hook=hook, tools=[send]) as rt:
        seen = Commits(rt)
        root = rt.create_session("r", capabilities=["session.spawn", "tool:send"],
                                 child_strategy="one_for_all")
        try:
            kids = seen.until(lambda: len(children_by_role(rt, root)) == 2
                              and children_by_role(rt, root))
            seen.until(lambda: restarted(rt, kids["b"]))
        finally:
            release.set()
        rt.stats()
        clock.advance(0.5)
        done = rt.wait(root, timeout=WAIT)

        assert done.state == "completed"
        (call,) = rt.tool_calls(kids["b"])
        assert sent == [call.id]
        b = rt.session(kids["b"])
        assert (b.state, b.summary) == ("completed", "b saw ['sent to bob']")
        tool_messages = [m for m in rt.messages(kids["b"]) if m.role == "tool"]
        assert [m.body["tool_call_id"] for m in tool_messages] == [call.id]


def test_rest_for_one_escalation_cancels_only_the_younger_siblings(db_path: Path) -> None:
    clock = ManualClock()
    gates = Gates(["a", "c"])

    def child(turn: st.ScriptTurn) -> Any:
        if turn.role == "b":
            assert gates.entered["a"].wait(WAIT) and gates.entered["c"].wait(WAIT)
        gates.block_first_attempt(turn)
        return answer(turn)

    hook = ByRole(FaultPlan().at("provider.after", times=1, role="b"))
    with open_rt(db_path, tree_policy(["a", "b", "c"], child), clock=clock, fault_hook=hook,
                 restart=st.RestartPolicy(max_restarts=0)) as rt:
        seen = Commits(rt)
        root = rt.create_session("r", capabilities=["session.spawn"],
                                 child_strategy="rest_for_one")
        try:
            kids = seen.until(lambda: len(children_by_role(rt, root)) == 3
                              and children_by_role(rt, root))
            seen.until(lambda: rt.session(kids["c"]).terminal)
        finally:
            gates.open_all()
        done = rt.wait(root, timeout=WAIT)

        assert (done.state, done.summary) == ("completed", "; ".join([
            "completed/completed", "failed/restart_intensity", "cancelled/sibling_failed"]))
        assert jobs(rt, kids["a"]) == [("completed", 1, None)]


def test_a_temporary_child_crashing_under_one_for_all_leaves_its_siblings_alone(
    db_path: Path,
) -> None:
    clock = ManualClock()
    gates = Gates(["b"])

    def policy(turn: st.ScriptTurn) -> Any:
        if turn.role == "root" and turn.turn == 0:
            return st.reply("", st.call("spawn_session", role="a", task="task a"),
                            st.call("spawn_session", role="b", task="task b"))
        if turn.role == "a":
            assert gates.entered["b"].wait(WAIT)
        gates.block_first_attempt(turn)
        return tree_policy(["a", "b"], answer)(turn)

    hook = ByRole(FaultPlan().at("provider.after", times=1, role="a"))
    limits = st.Limits(default_restart="temporary")  # children are spawned temporary
    rt = st.Runtime.open(db_path, providers=[st.ScriptedProvider(policy)], limits=limits,
                         clock=clock, fault_hook=hook, lease_ttl=3600)
    hook.store = rt._store
    with rt:
        seen = Commits(rt)
        root = rt.create_session("r", capabilities=["session.spawn"], restart="transient",
                                 child_strategy="one_for_all")
        try:
            kids = seen.until(lambda: len(children_by_role(rt, root)) == 2
                              and children_by_role(rt, root))
            seen.until(lambda: rt.session(kids["a"]).terminal)
        finally:
            gates.open_all()
        done = rt.wait(root, timeout=WAIT)

        assert (done.state, done.summary) == ("completed", "failed/crashed; completed/completed")
        assert restarted(rt, kids["b"]) == []
        assert jobs(rt, kids["b"]) == [("completed", 1, None)]


def test_one_for_all_cancels_a_temporary_sibling_instead_of_restarting_it(db_path: Path) -> None:
    clock = ManualClock()
    gates = Gates(["b"])
    a_is_permanent = threading.Event()

    def policy(turn: st.ScriptTurn) -> Any:
        if turn.role == "root" and turn.turn == 0:
            return st.reply("", st.call("spawn_session", role="a", task="task a"),
                            st.call("spawn_session", role="b", task="task b"))
        if turn.role == "a" and turn.request.attempt == 1:
            assert gates.entered["b"].wait(WAIT) and a_is_permanent.wait(WAIT)
        gates.block_first_attempt(turn)
        return tree_policy(["a", "b"], answer)(turn)

    hook = ByRole(FaultPlan().at("provider.after", times=1, role="a"))
    limits = st.Limits(default_restart="temporary")  # children are spawned temporary
    rt = st.Runtime.open(db_path, providers=[st.ScriptedProvider(policy)], limits=limits,
                         clock=clock, fault_hook=hook, lease_ttl=3600)
    hook.store = rt._store
    with rt:
        seen = Commits(rt)
        root = rt.create_session("r", capabilities=["session.spawn"], restart="transient",
                                 child_strategy="one_for_all")
        a_id = seen.until(lambda: children_by_role(rt, root).get("a"))
        rt._store.execute_raw_for_tests("UPDATE session SET restart = 'permanent' WHERE id = ?",
                                       (a_id,))  # a restarts; b stays temporary
        a_is_permanent.set()
        try:
            kids = seen.until(lambda: len(children_by_role(rt, root)) == 2
                              and children_by_role(rt, root))
            seen.until(lambda: rt.session(kids["b"]).terminal)
        finally:
            gates.open_all()
        rt.stats()
        clock.advance(0.5)
        done = rt.wait(root, timeout=WAIT)

        assert (done.state, done.summary) == ("completed", "completed/completed; cancelled/sibling_restart")
        assert jobs(rt, kids["a"]) == [("completed", 2, None)]
