"""Process recovery: ``Runtime.open`` on a store left by a dead process resumes it.

A dead process is simulated in-process: a runtime whose provider (or tool) is stuck in
the middle of a call is closed, which cancels the call and writes nothing more -- the
store is left as a ``kill -9`` leaves it, with the job still ``running``. Opening the
store again must re-queue that job with ``attempt + 1`` and finish the work from the
latest checkpoint, without asking the model again for a turn it already answered.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

import sessiontree as st
from sessiontree.persistence import open_store
from sessiontree.testing import Commits, FaultPlan, ManualClock

WAIT = 10.0
HANG = 60.0  # a stuck call: ended by close() cancelling it, never waited out


class Hang:
    """Makes chosen provider calls hang until the runtime closes (cancel-aware)."""

    def __init__(self, when: Callable[[st.ScriptTurn], bool], count: int = 1) -> None:
        self.when = when
        self.entered = threading.Semaphore(0)
        self.count = count
        self.requests: list[tuple[str, int, int]] = []  # (role, turn, attempt)

    def latency(self, request: st.ModelRequest) -> float:
        turn = st.ScriptTurn(request)
        self.requests.append((turn.role, turn.turn, request.attempt))
        if self.when(turn):
            self.entered.release()
            return HANG  # sleep-ok: ScriptedProvider waits on the run's cancel token
        return 0.0

    def wait_entered(self) -> None:
        for _ in range(self.count):
            assert self.entered.acquire(timeout=WAIT)


def first_attempt(role: str, turn_no: int = 0) -> Callable[[st.ScriptTurn], bool]:
    return lambda t: t.role == role and t.turn == turn_no and t.request.attempt == 1


def open_rt(
    db: Path, policy: Callable[[st.ScriptTurn], Any], *, hang: Hang | None = None,
    tools: Iterable[st.Tool] = (), limits: st.Limits | None = None,
) -> st.Runtime:
    provider = st.ScriptedProvider(policy, latency=hang.latency if hang else 0.0)
    return st.Runtime.open(db, providers=[provider], tools=tools, limits=limits, lease_ttl=3600)


def stored_jobs(db: Path, sid: str) -> list[tuple[str, int]]:
    """The jobs as the dead process left them in the store."""
    store = open_store(db)
    try:
        return [(j.state, j.attempt) for j in store.jobs(session_id=sid)]
    finally:
        store.close()


def payloads(rt: st.Runtime, sid: str, event_type: str) -> list[dict[str, Any]]:
    return [e.payload for e in rt.events(session_id=sid, type_prefix=event_type)
            if e.type == event_type]


def answer(turn: st.ScriptTurn) -> str:
    return f"answered {turn.task}"


class KeyArgs(BaseModel):
    key: str


# -- running jobs are re-queued -------------------------------------------------------------
def test_reopen_requeues_a_running_job_with_next_attempt_and_the_session_completes(
    db_path: Path,
) -> None:
    hang = Hang(first_attempt("root"))
    with open_rt(db_path, answer, hang=hang) as rt:
        sid = rt.create_session("t1")
        hang.wait_entered()
    assert stored_jobs(db_path, sid) == [("running", 1)]

    with open_rt(db_path, answer) as rt:
        (job,) = rt.jobs(session_id=sid)
        assert rt.recovery.requeued_jobs == [job.id]
        assert rt.recovery.resumed_sessions == [sid]
        done = rt.wait(sid, timeout=WAIT)

        assert (done.state, done.summary) == ("completed", "answered t1")
        assert [(j.state, j.attempt) for j in rt.jobs(session_id=sid)] == [("completed", 2)]
        assert payloads(rt, sid, "FR-EVT-SESS-RECOVERED") == [
            {"from_state": "running", "attempt": 2, "open_tool_calls": []}]
        retried = payloads(rt, sid, "FR-EVT-SESS-SCHED-RETRIED")
        assert [(r["attempt"], r["reason"]) for r in retried] == [(2, "recovered")]


def tree_policy(turn: st.ScriptTurn) -> Any:
    if turn.role == "root" and turn.turn == 0:
        return st.reply("", *[st.call("spawn_session", role="worker", task=f"part {i}")
                              for i in range(3)])
    if turn.role == "root" and turn.turn == 1:
        return st.reply("", st.call("wait_for_children"))
    if turn.role == "root":
        return ", ".join(sorted(c["summary"] for c in turn.result_json()["children"]))
    return answer(turn)


def test_reopen_resumes_a_tree_whose_children_were_cut_off(db_path: Path) -> None:
    hang = Hang(first_attempt("worker"), count=3)
    with open_rt(db_path, tree_policy, hang=hang) as rt:
        root = rt.create_session("r", capabilities=["session.spawn"])
        hang.wait_entered()
        rt.wait_state(root, "waiting", timeout=WAIT)
        workers = [c.id for c in rt.children(root)]

    with open_rt(db_path, tree_policy) as rt:
        assert sorted(rt.recovery.resumed_sessions) == sorted(workers)
        done = rt.wait(root, timeout=WAIT)

        assert (done.state, done.summary) == (
            "completed", "answered part 0, answered part 1, answered part 2")
        for worker in workers:
            assert len(payloads(rt, worker, "FR-EVT-SESS-RECOVERED")) == 1
            assert [(j.state, j.attempt) for j in rt.jobs(session_id=worker)] == [
                ("completed", 2)]
        assert sorted(m.sender_id for m in rt.mailbox(root)) == sorted(workers)


def test_reopening_a_store_whose_sessions_ended_resumes_nothing(db_path: Path) -> None:
    with open_rt(db_path, tree_policy) as rt:
        root = rt.create_session("r", capabilities=["session.spawn"])
        rt.wait(root, timeout=WAIT)
        events = len(rt.events())

    with open_rt(db_path, tree_policy) as rt:
        assert rt.recovery == st.RecoveryReport()
        assert len(rt.events()) == events
        assert rt.stats().dispatched == 0


# -- the known failures of peers, one test each -------------------------------------------------
def test_a_run_created_but_never_dispatched_is_not_dropped(db_path: Path) -> None:
    hang = Hang(first_attempt("blocker"))
    one_slot = st.Limits(max_concurrent_runs=1)
    with open_rt(db_path, answer, hang=hang, limits=one_slot) as rt:
        rt.create_session("b", role="blocker")
        hang.wait_entered()
        late = rt.create_session("late")
        assert rt.session(late).state == "queued"
        assert rt.events(session_id=late, type_prefix="FR-EVT-SESS-SCHED-DISPATCHED") == []

    with open_rt(db_path, answer, limits=one_slot) as rt:
        assert rt.recovery.queued_jobs == 2
        done = rt.wait(late, timeout=WAIT)
        assert (done.state, done.summary) == ("completed", "answered late")
        assert [(j.state, j.attempt) for j in rt.jobs(session_id=late)] == [("completed", 1)]


class ToolHang:
    """A tool whose first attempt is cut off by the process dying in the middle of it."""

    def __init__(self, name: str, effect: str) -> None:
        self.entered = threading.Event()
        self.runs: list[tuple[str, int, str]] = []  # (call_id, attempt, idempotency_key)

        def fn(ctx: st.ToolContext, args: KeyArgs) -> str:
            self.runs.append((ctx.call_id, ctx.attempt, ctx.idempotency_key))
            if ctx.attempt == 1:
                self.entered.set()
                ctx.cancel.wait(HANG)  # sleep-ok: ends when close() cancels the run
                ctx.cancel.raise_if_cancelled()
            return f"{name} did {args.key}"

        self.tool = st.tool(name, KeyArgs, effect=effect)(fn)


def one_call(tool_name: str) -> Callable[[st.ScriptTurn], Any]:
    def policy(turn: st.ScriptTurn) -> Any:
        if turn.turn == 0:
            return st.reply("", st.call(tool_name, key="k"))
        return f"saw {turn.tool_results[0].content}"

    return policy


def cut_off_in_tool(db_path: Path, tool: ToolHang) -> str:
    with open_rt(db_path, one_call(tool.tool.name), tools=[tool.tool]) as rt:
        sid = rt.create_session("t", capabilities=[f"tool:{tool.tool.name}"])
        assert tool.entered.wait(WAIT)
    return sid


def test_a_tool_call_left_without_its_result_does_not_break_resume(db_path: Path) -> None:
    tool = ToolHang("upsert", "idempotent")
    sid = cut_off_in_tool(db_path, tool)

    hang = Hang(lambda t: False)
    with open_rt(db_path, one_call("upsert"), hang=hang, tools=[tool.tool]) as rt:
        (call,) = rt.tool_calls(sid)
        assert payloads(rt, sid, "FR-EVT-SESS-RECOVERED") == [
            {"from_state": "running", "attempt": 2, "open_tool_calls": [call.id]}]
        done = rt.wait(sid, timeout=WAIT)

        assert (done.state, done.summary) == ("completed", "saw upsert did k")
        assert tool.runs == [(call.id, 1, call.idempotency_key), (call.id, 2, call.idempotency_key)]
        assert hang.requests == [("root", 1, 1)]  # the stored reply was not asked for again
        (call,) = rt.tool_calls(sid)
        assert (call.state, call.attempts) == ("done", 2)


def test_a_side_effecting_call_cut_off_by_process_death_is_held_not_rerun(db_path: Path) -> None:
    tool = ToolHang("send", "side_effecting")
    sid = cut_off_in_tool(db_path, tool)

    with open_rt(db_path, one_call("send"), tools=[tool.tool]) as rt:
        held = rt.wait_state(sid, "awaiting_operator", timeout=WAIT)
        (call,) = rt.tool_calls(sid)

        assert (held.state, held.reason) == ("awaiting_operator", "unknown_side_effect")
        assert len(tool.runs) == 1
        assert call.state == "intent"
        (unknown,) = payloads(rt, sid, "FR-EVT-SESS-TOOL-UNKNOWN-SIDE-EFFECT")
        assert unknown["call_id"] == call.id


def test_reopen_reports_held_sessions_and_resolving_one_finishes_it(db_path: Path) -> None:
    tool = ToolHang("send", "side_effecting")
    sid = cut_off_in_tool(db_path, tool)
    with open_rt(db_path, one_call("send"), tools=[tool.tool]) as rt:
        rt.wait_state(sid, "awaiting_operator", timeout=WAIT)

    with open_rt(db_path, one_call("send"), tools=[tool.tool]) as rt:
        assert rt.recovery.awaiting_operator == [sid]
        assert rt.recovery.requeued_jobs == []
        (call,) = rt.tool_calls(sid)
        rt.resolve(call.id, "done", result="sent")
        done = rt.wait(sid, timeout=WAIT)

        assert (done.state, done.summary) == ("completed", "saw sent")
        assert len(tool.runs) == 1


def test_a_resumed_session_does_not_rerun_turns_already_stored(db_path: Path) -> None:
    lookups: list[str] = []

    @st.tool("lookup", KeyArgs, effect="read_only")
    def lookup(ctx: st.ToolContext, args: KeyArgs) -> str:
        lookups.append(args.key)
        return f"value {args.key}"

    def policy(turn: st.ScriptTurn) -> Any:
        if turn.turn < 2:
            return st.reply("", st.call("lookup", key=f"k{turn.turn}"))
        return "final"

    first = Hang(lambda t: t.turn == 2 and t.request.attempt == 1)
    with open_rt(db_path, policy, hang=first, tools=[lookup]) as rt:
        sid = rt.create_session("t", capabilities=["tool:lookup"])
        first.wait_entered()
    assert [(turn, attempt) for _, turn, attempt in first.requests] == [(0, 1), (1, 1), (2, 1)]

    second = Hang(lambda t: False)
    with open_rt(db_path, policy, hang=second, tools=[lookup]) as rt:
        done = rt.wait(sid, timeout=WAIT)

        assert (done.state, done.summary) == ("completed", "final")
        assert [(turn, attempt) for _, turn, attempt in second.requests] == [(2, 2)]
        assert lookups == ["k0", "k1"]
        assert [m.role for m in rt.messages(sid)] == [
            "user", "assistant", "tool", "assistant", "tool", "assistant"]


def test_a_resumed_child_keeps_its_spawn_depth_and_its_depth_limit(db_path: Path) -> None:
    def policy(turn: st.ScriptTurn) -> Any:
        if turn.role == "root" and turn.turn == 0:
            return st.reply("", st.call("spawn_session", role="worker", task="w",
                                        capabilities=["session.spawn"]))
        if turn.role == "root" and turn.turn == 1:
            return st.reply("", st.call("wait_for_children"))
        if turn.role == "root":
            return turn.result_json()["children"][0]["summary"]
        if turn.turn == 0:
            return st.reply("", st.call("spawn_session", role="grandchild", task="g"))
        return f"spawn answered {turn.result_json()['reason']}"

    limits = st.Limits(max_depth=1)
    hang = Hang(first_attempt("worker"))
    with open_rt(db_path, policy, hang=hang, limits=limits) as rt:
        root = rt.create_session("r", capabilities=["session.spawn"])
        hang.wait_entered()
        rt.wait_state(root, "waiting", timeout=WAIT)
        (worker,) = rt.children(root)
        assert worker.depth == 1

    with open_rt(db_path, policy, limits=limits) as rt:
        assert rt.recovery.resumed_sessions == [worker.id]
        done = rt.wait(root, timeout=WAIT)

        assert (done.state, done.summary) == ("completed", "spawn answered depth_limit")
        assert rt.session(worker.id).depth == 1
        assert rt.children(worker.id) == []
        (rejected,) = payloads(rt, worker.id, "FR-EVT-SESS-SPAWN-REJECTED")
        assert rejected["reason"] == "depth_limit"


# -- stores edited into odd states -----------------------------------------------------------
def test_a_session_left_running_without_a_live_job_gets_its_run_back(db_path: Path) -> None:
    hang = Hang(first_attempt("root"))
    with open_rt(db_path, answer, hang=hang) as rt:
        sid = rt.create_session("t")
        hang.wait_entered()
    store = open_store(db_path)
    store.execute_raw_for_tests("UPDATE job SET state = 'failed' WHERE session_id = ?", (sid,))
    store.close()

    with open_rt(db_path, answer) as rt:
        assert rt.recovery.resumed_sessions == [sid]
        assert rt.recovery.requeued_jobs == []
        done = rt.wait(sid, timeout=WAIT)
        assert (done.state, done.summary) == ("completed", "answered t")
        (recovered,) = payloads(rt, sid, "FR-EVT-SESS-RECOVERED")
        assert recovered["from_state"] == "running"


def test_a_restart_backoff_pending_at_process_death_is_kept_on_reopen(db_path: Path) -> None:
    clock = ManualClock()
    plan = FaultPlan().at("provider.before", times=1)
    rt = st.Runtime.open(db_path, providers=[st.ScriptedProvider(answer)], clock=clock,
                         fault_hook=plan, lease_ttl=3600)
    with rt:
        seen = Commits(rt)
        sid = rt.create_session("t")
        seen.until(lambda: payloads(rt, sid, "FR-EVT-SESS-RESTARTED"))

    clock = ManualClock()
    with st.Runtime.open(db_path, providers=[st.ScriptedProvider(answer)], clock=clock,
                         lease_ttl=3600) as rt:
        assert rt.recovery.queued_jobs == 1
        assert rt.recovery.requeued_jobs == []
        assert clock.pending() == [0.5]
        assert rt.session(sid).state == "queued"
        assert rt.stats().dispatched == 0
        clock.advance(0.5)
        done = rt.wait(sid, timeout=WAIT)
        assert done.state == "completed"
        assert [(j.state, j.attempt) for j in rt.jobs(session_id=sid)] == [("completed", 2)]


def test_a_store_opened_without_the_provider_keeps_its_runs_queued_for_one_that_has_it(
    db_path: Path,
) -> None:
    gate = threading.Event()

    def slow(turn: st.ScriptTurn) -> st.ModelReply:
        gate.wait(5)
        return st.reply("answer")

    rt = st.Runtime.open(db_path, providers=[st.ScriptedProvider(slow, name="special")])
    sid = rt.create_session("t", provider="special")
    rt.wait_state(sid, "running", timeout=5)
    rt.close(timeout=0.5)
    gate.set()

    other = st.ScriptedProvider(lambda turn: st.reply("x"), name="other")
    with st.Runtime.open(db_path, providers=[other]) as rt2:
        done = rt2.create_session("u", provider="other")
        assert rt2.wait(done, timeout=10).state == "completed"
        assert rt2.session(sid).state == "queued"
        throttled = rt2.events(session_id=sid, type_prefix="FR-EVT-SESS-SCHED-THROTTLED")
        assert [e.payload["limit"] for e in throttled] == ["provider_unavailable"]

    with st.Runtime.open(db_path, providers=[st.ScriptedProvider(lambda t: st.reply("ok"),
                                                                 name="special")]) as rt3:
        assert rt3.wait(sid, timeout=10).summary == "ok"
