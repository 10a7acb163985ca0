"""Faults in the store: a full disk or a locked database during a commit.

The transaction rolls back whole, so the session stays at its previous checkpoint; the
run is restarted after its back-off; the runtime keeps running and, once the fault
clears, the session completes. Each fault is tested injected (``FaultPlan`` at
``store.commit``) and real (``PRAGMA max_page_count``, a second connection holding the
write lock).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import sessiontree as st
from sessiontree.testing import Commits, FaultPlan, ManualClock, disk_full

WAIT = 10.0
BIG = "x" * 400_000  # a reply that needs ~100 new pages


class Thinking:
    """A model that, on its first attempt, holds its reply until the test has broken the
    store: the fault hits the commit of that reply."""

    def __init__(self, content: str = "the answer") -> None:
        self.content = content
        self.entered = threading.Event()
        self.go = threading.Event()

    def policy(self, turn: st.ScriptTurn) -> Any:
        if turn.role == "root" and turn.request.attempt == 1:
            self.entered.set()
            assert self.go.wait(WAIT)
        return self.content if turn.role == "root" else "other done"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def thinking() -> Iterator[Thinking]:
    model = Thinking()
    yield model
    model.go.set()  # never leave a provider call blocked


def open_rt(db: Path, policy: Callable[[st.ScriptTurn], Any], clock: ManualClock,
            tools: tuple[st.Tool, ...] = ()) -> st.Runtime:
    # A long lease: its heartbeat commits must not meet the injected fault.
    return st.Runtime.open(db, providers=[st.ScriptedProvider(policy)], tools=tools, clock=clock,
                           lease_ttl=3600)


def payloads(rt: st.Runtime, sid: str, event_type: str) -> list[dict[str, Any]]:
    return [e.payload for e in rt.events(session_id=sid, type_prefix=event_type)
            if e.type == event_type]


def at_checkpoint(rt: st.Runtime, sid: str) -> tuple[Any, ...]:
    """What a checkpoint pins: the message head, the checkpoint, the usage."""
    s = rt._store.session(sid)  # the row itself: its message and checkpoint heads
    return s.message_seq, s.message_head, s.checkpoint_seq, s.usage


def assert_rolled_back_then_completes(
    rt: st.Runtime, clock: ManualClock, sid: str, before: tuple[Any, ...], error: str,
    clear: Callable[[], None], summary: str,
) -> None:
    """After the failed commit: the session is where it was, the runtime still runs
    other work, and once the fault clears the restarted run completes."""
    Commits(rt).until(lambda: payloads(rt, sid, "FR-EVT-SESS-RESTARTED"))
    (crash,) = payloads(rt, sid, "FR-EVT-SESS-CRASHED")
    assert crash["error_type"] == "StoreError" and error in crash["error"]
    assert at_checkpoint(rt, sid) == before
    assert [m.role for m in rt.messages(sid)] == ["user"]
    assert rt.session(sid).state == "queued"

    clear()
    other = rt.create_session("other", role="other")
    assert rt.wait(other, timeout=WAIT).state == "completed"  # the runtime kept running

    rt.stats()
    clock.advance(0.5)
    done = rt.wait(sid, timeout=WAIT)
    assert (done.state, done.summary) == ("completed", summary)
    assert [(j.state, j.attempt) for j in rt.jobs(session_id=sid)] == [("completed", 2)]
    assert st.verify_store(rt._store).ok


# -- a full disk ----------------------------------------------------------------------------
def test_full_disk_at_a_commit_leaves_the_session_at_its_previous_checkpoint(
    db_path: Path, clock: ManualClock, thinking: Thinking,
) -> None:
    with open_rt(db_path, thinking.policy, clock) as rt:
        sid = rt.create_session("t")
        assert thinking.entered.wait(WAIT)
        before = at_checkpoint(rt, sid)
        plan = FaultPlan().at("store.commit", times=1, error=disk_full)
        plan.attach_store(rt._store)
        thinking.go.set()

        assert_rolled_back_then_completes(rt, clock, sid, before, "database or disk is full",
                                          lambda: None, "the answer")
        assert plan.fired("store.commit") == 1


def test_a_real_sqlite_full_leaves_the_session_at_its_previous_checkpoint(
    db_path: Path, clock: ManualClock,
) -> None:
    thinking = Thinking(BIG)
    try:
        with open_rt(db_path, thinking.policy, clock) as rt:
            sid = rt.create_session("t")
            assert thinking.entered.wait(WAIT)
            before = at_checkpoint(rt, sid)
            pages = rt._store.execute_raw_for_tests("PRAGMA page_count").fetchone()[0]
            # Room for small commits (the crash's own bookkeeping), not for the big reply.
            rt._store.execute_raw_for_tests(f"PRAGMA max_page_count = {pages + 16}")
            thinking.go.set()

            def grow() -> None:
                rt._store.execute_raw_for_tests("PRAGMA max_page_count = 1073741823")

            assert_rolled_back_then_completes(rt, clock, sid, before, "database or disk is full",
                                              grow, BIG)
    finally:
        thinking.go.set()


def test_full_disk_while_creating_a_session_raises_store_error_and_keeps_nothing(
    db_path: Path, clock: ManualClock, thinking: Thinking,
) -> None:
    thinking.go.set()
    with open_rt(db_path, thinking.policy, clock) as rt:
        FaultPlan().at("store.commit", times=1, error=disk_full).attach_store(rt._store)
        with pytest.raises(st.StoreError, match="database or disk is full"):
            rt.create_session("t")
        assert rt.sessions() == []
        assert rt.events() == []

        sid = rt.create_session("t")
        assert rt.wait(sid, timeout=WAIT).state == "completed"


class SendArgs(BaseModel):
    to: str


def test_full_disk_at_a_side_effecting_result_holds_the_call_and_never_reruns_it(
    db_path: Path, clock: ManualClock,
) -> None:
    sent: list[str] = []
    plan = FaultPlan().at("store.commit", times=1, error=disk_full)
    holder: dict[str, st.Runtime] = {}

    @st.tool("send", SendArgs, effect="side_effecting")
    def send(ctx: st.ToolContext, args: SendArgs) -> str:
        sent.append(ctx.call_id)
        plan.attach_store(holder["rt"]._store)  # the disk fills while the tool runs
        return f"sent to {args.to}"

    def policy(turn: st.ScriptTurn) -> Any:
        return st.reply("", st.call("send", to="bob")) if turn.turn == 0 else "done"

    with open_rt(db_path, policy, clock, tools=(send,)) as rt:
        holder["rt"] = rt
        sid = rt.create_session("t", capabilities=["tool:send"])
        Commits(rt).until(lambda: payloads(rt, sid, "FR-EVT-SESS-RESTARTED"))
        rt.stats()
        clock.advance(0.5)
        held = rt.wait_state(sid, "awaiting_operator", timeout=WAIT)

        (call,) = rt.tool_calls(sid)
        assert (held.state, held.reason) == ("awaiting_operator", "unknown_side_effect")
        assert sent == [call.id]
        assert call.state == "intent"
        assert [m.role for m in rt.messages(sid)] == ["user", "assistant"]


# -- a locked database ----------------------------------------------------------------------
def test_locked_database_at_a_commit_leaves_the_session_at_its_previous_checkpoint(
    db_path: Path, clock: ManualClock, thinking: Thinking,
) -> None:
    def locked(step: str, facts: dict[str, Any]) -> BaseException:
        return sqlite3.OperationalError("database is locked")

    with open_rt(db_path, thinking.policy, clock) as rt:
        sid = rt.create_session("t")
        assert thinking.entered.wait(WAIT)
        before = at_checkpoint(rt, sid)
        FaultPlan().at("store.commit", times=1, error=locked).attach_store(rt._store)
        thinking.go.set()

        assert_rolled_back_then_completes(rt, clock, sid, before, "database is locked",
                                          lambda: None, "the answer")


def test_a_real_lock_held_by_another_connection_is_outlasted_and_the_session_completes(
    db_path: Path, clock: ManualClock, thinking: Thinking,
) -> None:
    with open_rt(db_path, thinking.policy, clock) as rt:
        sid = rt.create_session("t")
        assert thinking.entered.wait(WAIT)
        before = at_checkpoint(rt, sid)
        rt._store.execute_raw_for_tests("PRAGMA busy_timeout = 50")
        other = sqlite3.connect(db_path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            thinking.go.set()
            # its reply's commit failed: the actor died (and told the scheduler)
            assert rt._ctx.actor_threads.wait_idle(WAIT)
            # The scheduler cannot record the crash either; it stays up and retries.
            assert rt.stats().running == 0
            assert clock.pending() == [0.5]
            assert at_checkpoint(rt, sid) == before
            assert rt.session(sid).state == "running"
            assert [(j.state, j.attempt) for j in rt.jobs(session_id=sid)] == [("running", 1)]
        finally:
            other.rollback()
            other.close()
        rt._store.execute_raw_for_tests("PRAGMA busy_timeout = 5000")
        clock.advance(0.5)  # the scheduler's retry records the crash and the restart

        assert_rolled_back_then_completes(rt, clock, sid, before, "database is locked",
                                          lambda: None, "the answer")
