"""The model_run queue: limits, fairness, and deterministic cancellation."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import pytest

import sessiontree as st
from sessiontree.supervision.queue import FairQueue, QueuedJob


def _job(n: int, root: str, session: str | None = None) -> QueuedJob:
    return QueuedJob(f"job{n}", 1, session or f"s{n}", root, "p", n)


def test_queue_is_fifo_within_a_tree_and_round_robin_across_trees() -> None:
    q = FairQueue()
    for n in range(100):
        q.push(_job(n, "big"))
    q.push(_job(1000, "small"))
    order = [q.pop_next(lambda j: True) for _ in range(4)]
    assert [j.job_id for j in order if j] == ["job0", "job1000", "job1", "job2"]


def test_queue_releases_delayed_jobs_when_due_and_ignores_duplicates() -> None:
    q = FairQueue()
    assert q.push(_job(1, "r"), not_before=10.0, now=0.0)
    assert not q.push(_job(1, "r"), not_before=10.0, now=0.0)
    assert q.pop_next(lambda j: True) is None
    assert q.release_due(10.0) is None
    popped = q.pop_next(lambda j: True)
    assert popped is not None and popped.job_id == "job1"


def test_a_discarded_job_is_never_popped_and_leaves_the_count() -> None:
    q = FairQueue()
    for n in range(3):
        q.push(_job(n, "r"))
    q.push(_job(9, "other"))
    q.discard("job0")
    q.discard("job9")
    assert len(q) == 2
    popped = [q.pop_next(lambda j: True) for _ in range(3)]
    assert [j.job_id if j else None for j in popped] == ["job1", "job2", None]
    assert len(q) == 0 and q.first() is None


def test_a_discarded_delayed_job_is_dropped_and_a_new_attempt_is_queued_alone() -> None:
    q = FairQueue()
    q.push(_job(1, "r"), not_before=5.0, now=0.0)
    q.discard("job1")
    assert q.release_due(10.0) is None and q.pop_next(lambda j: True) is None
    retried = QueuedJob("job1", 2, "s1", "r", "p", 1)
    assert q.push(retried)
    assert q.pop_next(lambda j: True) == retried
    assert q.pop_next(lambda j: True) is None


def test_an_ineligible_head_lets_the_next_tree_go_without_losing_its_place() -> None:
    q = FairQueue()
    q.push(_job(1, "a", session="busy"))
    q.push(_job(2, "b"))
    first = q.pop_next(lambda j: j.session_id != "busy")
    assert first is not None and first.job_id == "job2"
    assert q.first() == _job(1, "a", session="busy")
    later = q.pop_next(lambda j: True)
    assert later is not None and later.job_id == "job1"


class CountingProvider:
    """Counts calls in flight, globally and per session, inside the provider itself."""

    local = True

    def __init__(self, name: str, latency: float) -> None:
        self.name = name
        self.inner = st.ScriptedProvider(lambda t: "done", name=name, latency=latency)
        self.lock = threading.Lock()
        self.now = 0
        self.peak = 0
        self.per_session: Counter[str] = Counter()
        self.session_peak = 0

    def complete(self, request: st.ModelRequest, cancel: st.CancelToken) -> st.ModelReply:
        with self.lock:
            self.now += 1
            self.per_session[request.session_id] += 1
            self.peak = max(self.peak, self.now)
            self.session_peak = max(self.session_peak, self.per_session[request.session_id])
        try:
            return self.inner.complete(request, cancel)
        finally:
            with self.lock:
                self.now -= 1
                self.per_session[request.session_id] -= 1


@pytest.mark.timeout(120)
def test_limits_hold_under_200_sessions(db_path: Path) -> None:
    a, b = CountingProvider("a", 0.005), CountingProvider("b", 0.005)
    limits = st.Limits(max_concurrent_runs=6, provider_limits={"a": 4, "b": 3})
    with st.Runtime.open(db_path, providers=[a, b], limits=limits) as rt:
        ids = [rt.create_session("t", provider="a" if i % 2 else "b") for i in range(200)]
        for sid in ids:
            assert rt.wait(sid, timeout=60).state == "completed"
        stats = rt.stats()
    assert a.peak <= 4 and b.peak <= 3 and a.peak + b.peak >= 2
    assert stats.max_running <= 6
    assert stats.max_by_provider["a"] <= 4 and stats.max_by_provider["b"] <= 3
    assert a.session_peak == 1 and b.session_peak == 1


def test_one_tree_cannot_starve_another(db_path: Path) -> None:
    release = threading.Event()
    in_leaf = threading.Event()

    def policy(turn: st.ScriptTurn) -> st.ModelReply | str:
        if turn.role == "big" and turn.turn == 0:
            return st.reply("", *[st.call("spawn_session", role="leaf", task=str(i))
                                  for i in range(6)])
        if turn.role == "big" and turn.turn == 1:
            return st.reply("", st.call("wait_for_children"))
        if turn.role == "leaf":
            in_leaf.set()
            release.wait(10)
        return "done"

    with st.Runtime.open(db_path, providers=[st.ScriptedProvider(policy)],
                         limits=st.Limits(max_concurrent_runs=1)) as rt:
        big = rt.create_session("fan out", role="big", capabilities=["session.spawn"])
        assert in_leaf.wait(10)  # the first leaf runs; the other five are queued
        other = rt.create_session("small", role="other")
        release.set()
        assert rt.wait(big, timeout=30).state == "completed"
        rt.wait(other, timeout=30)
        order = [e.model_session_id for e in rt.events(type_prefix="FR-EVT-SESS-SCHED-DISPATCHED")]
        leaves = {n.session.id for n in rt.tree(big)[0].children}
    leaf_dispatches = [i for i, sid in enumerate(order) if sid in leaves]
    # The big tree had six leaf runs queued before the other root arrived; round-robin
    # across trees serves the other root right after the leaf that was running.
    assert order.index(other) < leaf_dispatches[2]


def test_cancel_of_a_queued_job_is_immediate(db_path: Path) -> None:
    release = threading.Event()
    called: list[str] = []

    def policy(turn: st.ScriptTurn) -> str:
        called.append(turn.session_id)
        release.wait(10)
        return "done"

    with st.Runtime.open(db_path, providers=[st.ScriptedProvider(policy)],
                         limits=st.Limits(max_concurrent_runs=1)) as rt:
        first = rt.create_session("first")
        rt.wait_state(first, "running", timeout=10)
        second = rt.create_session("second")
        rt.cancel(second)
        assert rt.session(second).state == "cancelled"
        assert [j.state for j in rt.jobs(session_id=second)] == ["cancelled"]
        [event] = rt.events(session_id=second, type_prefix="FR-EVT-SESS-SCHED-CANCELLED")
        assert event.payload["was_running"] is False
        release.set()
        rt.wait(first, timeout=10)
    assert second not in called


def test_cancel_of_a_running_job_discards_the_late_reply(db_path: Path) -> None:
    in_call = threading.Event()
    release = threading.Event()
    tool_ran: list[str] = []

    from pydantic import BaseModel

    class Args(BaseModel):
        pass

    @st.tool("record", Args, effect="side_effecting")
    def record(ctx: st.ToolContext, args: Args) -> str:
        tool_ran.append(ctx.call_id)
        return "recorded"

    def policy(turn: st.ScriptTurn) -> st.ModelReply:
        in_call.set()
        release.wait(10)  # the provider ignores cancellation: its reply comes late
        return st.reply("", st.call("record"))

    with st.Runtime.open(db_path, providers=[st.ScriptedProvider(policy)], tools=[record]) as rt:
        sid = rt.create_session("go")
        assert in_call.wait(10)
        rt.cancel(sid)
        assert rt.session(sid).state == "cancelled"
        release.set()
        rt.wait(sid, timeout=10)
        roles = [m.role for m in rt.messages(sid)]
        [event] = rt.events(session_id=sid, type_prefix="FR-EVT-SESS-SCHED-CANCELLED")
        rt.close()
    assert roles == ["user"]  # no assistant reply was stored
    assert tool_ran == []
    assert event.payload["was_running"] is True
