"""Sessions that take more than one turn: keep_open, send, close, cancel_job, and the
conversational child a parent talks to through built-in tools."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

import sessiontree as st
from sessiontree.testing import Commits, ManualClock

WAIT = 10.0


def last_user(turn: st.ScriptTurn) -> str:
    return [m.content for m in turn.messages if m.role == "user"][-1]


def echo(turn: st.ScriptTurn) -> str:
    return f"re: {last_user(turn)}"


class Held:
    """A provider whose calls block until released (``ignores_cancel``) or until their
    run is cancelled; every other call answers at once with ``echo``. It counts the
    calls in flight per session."""

    local = True

    def __init__(self, hold: set[str], *, ignores_cancel: bool = False) -> None:
        self.name = "held"
        self.hold = hold  # user messages whose answer blocks
        self.ignores_cancel = ignores_cancel
        self.entered = {text: threading.Event() for text in hold}
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.in_flight: dict[str, int] = {}
        self.peak_per_session = 0
        self.returned: list[str] = []

    def complete(self, request: st.ModelRequest, cancel: st.CancelToken) -> st.ModelReply:
        text = [m.content for m in request.messages if m.role == "user"][-1]
        with self.lock:
            self.in_flight[request.session_id] = self.in_flight.get(request.session_id, 0) + 1
            self.peak_per_session = max(self.peak_per_session, self.in_flight[request.session_id])
        try:
            if text in self.hold and request.attempt == 1:
                self.entered[text].set()
                if self.ignores_cancel:
                    assert self.release.wait(WAIT)
                else:
                    assert cancel.wait(WAIT)
                    raise st.Cancelled(cancel.reason)
            self.returned.append(text)
            return st.ModelReply(content=f"re: {text}")
        finally:
            with self.lock:
                self.in_flight[request.session_id] -= 1


def payloads(rt: st.Runtime, sid: str, event_type: str) -> list[dict[str, Any]]:
    return [e.payload for e in rt.events(session_id=sid, type_prefix=event_type)
            if e.type == event_type]


def conversation(rt: st.Runtime, sid: str) -> list[tuple[str, str]]:
    return [(m.role, m.body["content"]) for m in rt.messages(sid)]


# -- idle, send, close -----------------------------------------------------------------------
def test_a_conversational_session_answers_then_waits_idle_and_wait_returns_its_answer(
    db_path: Path,
) -> None:
    with st.Runtime.open(db_path, providers=[st.ScriptedProvider(echo)]) as rt:
        sid = rt.create_session("hello", keep_open=True)
        first = rt.wait(sid, timeout=WAIT)
        assert (first.state, first.reason, first.summary) == ("idle", "answered", "re: hello")
        assert rt.mailbox(sid) == [] and rt.jobs(sid)[0].state == "completed"


def test_by_default_a_session_still_completes_when_it_answers(db_path: Path) -> None:
    with st.Runtime.open(db_path, providers=[st.ScriptedProvider(echo)]) as rt:
        sid = rt.create_session("hello")
        assert rt.wait(sid, timeout=WAIT).state == "completed"
        with pytest.raises(st.InvalidInput, match="not conversational"):
            rt.send(sid, "more")


def test_three_sends_are_answered_in_turn_and_close_completes_with_the_last_answer(
    db_path: Path,
) -> None:
    with st.Runtime.open(db_path, providers=[st.ScriptedProvider(echo)]) as rt:
        sid = rt.create_session("one", keep_open=True)
        rt.wait(sid, timeout=WAIT)
        for text in ("two", "three", "four"):
            job = rt.send(sid, text)
            done = rt.wait(sid, timeout=WAIT)
            assert (done.state, done.summary) == ("idle", f"re: {text}")
            assert [j.state for j in rt.jobs(sid) if j.id == job] == ["completed"]
        rt.close_session(sid)
        closed = rt.session(sid)
        assert (closed.state, closed.reason, closed.summary) == ("completed", "closed", "re: four")
        assert conversation(rt, sid) == [
            ("user", "one"), ("assistant", "re: one"), ("user", "two"), ("assistant", "re: two"),
            ("user", "three"), ("assistant", "re: three"), ("user", "four"),
            ("assistant", "re: four")]
        with pytest.raises(st.InvalidInput, match="has ended"):
            rt.send(sid, "five")


def test_sends_to_a_busy_session_wait_their_turn_in_order_one_running_at_a_time(
    db_path: Path,
) -> None:
    provider = Held({"slow"}, ignores_cancel=True)
    with st.Runtime.open(db_path, providers=[provider]) as rt:
        sid = rt.create_session("slow", keep_open=True)
        try:
            assert provider.entered["slow"].wait(WAIT)
            jobs = [rt.send(sid, f"m{i}") for i in range(3)]
            assert [j.state for j in rt.jobs(sid)][1:] == ["pending"] * 3
            assert rt.session(sid).state == "running"
        finally:
            provider.release.set()
        Commits(rt).until(lambda: rt.session(sid).state == "idle"
                          and rt.jobs(sid)[-1].state == "completed")
        assert provider.returned == ["slow", "m0", "m1", "m2"]
        assert provider.peak_per_session == 1
        assert [j.id for j in rt.jobs(sid)][1:] == jobs
        assert [c for r, c in conversation(rt, sid) if r == "user"] == ["slow", "m0", "m1", "m2"]
        assert [r for r, _ in conversation(rt, sid)] == ["user", "assistant"] * 4
        moves = [(p["to_state"], p["reason"]) for p in payloads(rt, sid, "FR-EVT-SESS-STATE")]
        assert moves.count(("queued", "next_message")) == 3


def test_close_is_refused_unless_the_session_is_idle(db_path: Path) -> None:
    with st.Runtime.open(db_path, providers=[st.ScriptedProvider(echo)]) as rt:
        sid = rt.create_session("x", keep_open=True, start=False)
        with pytest.raises(st.IllegalTransition):
            rt.close_session(sid)
        rt.enqueue(sid)
        rt.wait(sid, timeout=WAIT)
        rt.close_session(sid)
        with pytest.raises(st.IllegalTransition):
            rt.close_session(sid)


def test_a_bad_message_is_refused_with_a_typed_error(db_path: Path) -> None:
    with st.Runtime.open(db_path, providers=[st.ScriptedProvider(echo)]) as rt:
        sid = rt.create_session("x", keep_open=True)
        rt.wait(sid, timeout=WAIT)
        with pytest.raises(st.InvalidInput):
            rt.send(sid, 42)  # type: ignore[arg-type]
        with pytest.raises(st.InvalidInput):
            rt.send(sid, "x" * 200_001)
        with pytest.raises(st.UnknownSession):
            rt.send("ses_nope", "hi")


# -- cancel_job ------------------------------------------------------------------------------
def test_a_pending_message_cancelled_is_dropped_at_once_and_never_joins_the_history(
    db_path: Path,
) -> None:
    provider = Held({"slow"}, ignores_cancel=True)
    with st.Runtime.open(db_path, providers=[provider]) as rt:
        sid = rt.create_session("slow", keep_open=True)
        try:
            assert provider.entered["slow"].wait(WAIT)
            dropped, kept = rt.send(sid, "drop me"), rt.send(sid, "keep me")
            assert rt.cancel_job(dropped, note="changed my mind")
            assert {j.id: j.state for j in rt.jobs(sid)}[dropped] == "cancelled"
        finally:
            provider.release.set()
        Commits(rt).until(lambda: {j.id: j.state for j in rt.jobs(sid)}[kept] == "completed")
        assert rt.wait(sid, timeout=WAIT).summary == "re: keep me"
        assert [c for r, c in conversation(rt, sid) if r == "user"] == ["slow", "keep me"]
        (cancelled,) = [p for p in payloads(rt, sid, "FR-EVT-SESS-SCHED-CANCELLED")]
        assert (cancelled["reason"], cancelled["note"], cancelled["was_running"]) == (
            "cancelled_by_host", "changed my mind", False)
        assert not rt.cancel_job(dropped)  # idempotent: it had already ended


def test_a_running_job_cancelled_stops_cooperatively_and_the_session_goes_on(
    db_path: Path,
) -> None:
    provider = Held({"stuck"})
    with st.Runtime.open(db_path, providers=[provider]) as rt:
        sid = rt.create_session("first", keep_open=True)
        rt.wait(sid, timeout=WAIT)
        stuck = rt.send(sid, "stuck")
        assert provider.entered["stuck"].wait(WAIT)
        nxt = rt.send(sid, "next")
        assert rt.cancel_job(stuck)
        Commits(rt).until(lambda: {j.id: j.state for j in rt.jobs(sid)}[nxt] == "completed")
        done = rt.wait(sid, timeout=WAIT)
        assert (done.state, done.summary) == ("idle", "re: next")
        (stopped,) = payloads(rt, sid, "FR-EVT-SESS-STOPPED")
        assert (stopped["outcome"], stopped["attempt"], stopped["reason"]) == (
            "stopped", 1, "cancelled_by_host")
        # the cut-off turn's message stays, unanswered; the next one is answered
        assert conversation(rt, sid)[2:] == [("user", "stuck"), ("user", "next"),
                                             ("assistant", "re: next")]
        assert provider.peak_per_session == 1


def test_a_late_reply_of_a_cancelled_running_job_is_discarded(db_path: Path) -> None:
    provider = Held({"late"}, ignores_cancel=True)
    with st.Runtime.open(db_path, providers=[provider]) as rt:
        sid = rt.create_session("late", keep_open=True)
        assert provider.entered["late"].wait(WAIT)
        (job,) = [j.id for j in rt.jobs(sid)]
        rt.cancel_job(job)
        assert rt.session(sid).state == "idle"  # the store moved on at once
        provider.release.set()
        Commits(rt).until(lambda: payloads(rt, sid, "FR-EVT-SESS-STOPPED"))
        assert provider.returned == ["late"]  # it did answer ...
        assert [r for r, _ in conversation(rt, sid)] == ["user"]  # ... and nothing was kept
        assert rt.session(sid).usage.model_runs == 1  # its cost is still charged


def test_a_running_job_that_ignores_cancel_is_abandoned_after_the_shutdown_time(
    db_path: Path,
) -> None:
    clock = ManualClock()
    provider = Held({"deaf"}, ignores_cancel=True)
    with st.Runtime.open(db_path, providers=[provider], clock=clock, lease_ttl=3600) as rt:
        seen = Commits(rt)
        sid = rt.create_session("deaf", keep_open=True, shutdown=2.0)
        try:
            assert provider.entered["deaf"].wait(WAIT)
            (deaf,) = [j.id for j in rt.jobs(sid)]
            nxt = rt.send(sid, "next")
            rt.cancel_job(deaf)
            assert rt.stats().running == 1  # still waited for: the next turn holds
            clock.advance(1.99)
            assert {j.id: j.state for j in rt.jobs(sid)}[nxt] == "queued"
            clock.advance(0.01)
            seen.until(lambda: {j.id: j.state for j in rt.jobs(sid)}[nxt] == "completed")
            (stopped,) = payloads(rt, sid, "FR-EVT-SESS-STOPPED")
            assert (stopped["outcome"], stopped["shutdown"]) == ("abandoned", 2.0)
            assert rt.stats().abandoned == 1  # its call is still in flight
        finally:
            provider.release.set()
        seen.until(lambda: rt.stats().abandoned == 0)
        assert rt.wait(sid, timeout=WAIT).summary == "re: next"


def test_cancelling_the_job_of_a_one_shot_session_cancels_the_session_with_the_note(
    db_path: Path,
) -> None:
    provider = Held({"task"})
    with st.Runtime.open(db_path, providers=[provider]) as rt:
        sid = rt.create_session("task")
        assert provider.entered["task"].wait(WAIT)
        (job,) = [j.id for j in rt.jobs(sid)]
        rt.cancel_job(job, note="too slow")
        done = rt.wait(sid, timeout=WAIT)
        assert (done.state, done.reason) == ("cancelled", "cancelled_by_host")
        ended = payloads(rt, sid, "FR-EVT-SESS-STATE")[-1]
        assert (ended["reason"], ended["note"]) == ("cancelled_by_host", "too slow")


def test_cancel_job_of_an_unknown_job_is_a_typed_error(db_path: Path) -> None:
    with st.Runtime.open(db_path, providers=[st.ScriptedProvider(echo)]) as rt, pytest.raises(
            st.InvalidInput):
        rt.cancel_job("job_nope")


# -- a host's cancel note is never a reason ------------------------------------------------
def test_a_hosts_free_text_is_a_note_beside_cancelled_by_host_never_the_reason(
    db_path: Path,
) -> None:
    with st.Runtime.open(db_path, providers=[st.ScriptedProvider(echo)]) as rt:
        sid = rt.create_session("x", start=False)
        rt.cancel(sid, note="restart_intensity")
        done = rt.session(sid)
        assert (done.state, done.reason) == ("cancelled", "cancelled_by_host")
        ended = payloads(rt, sid, "FR-EVT-SESS-STATE")[-1]
        assert (ended["reason"], ended["note"]) == ("cancelled_by_host", "restart_intensity")
        other = rt.create_session("y", start=False)
        with rt._store.transaction() as tx, pytest.raises(st.InvalidInput, match="reason code"):
            tx.set_state(other, st.SessionState.QUEUED, "because I said so")


# -- a conversational child ------------------------------------------------------------------
def test_a_parent_talks_to_a_conversational_child_and_hears_from_it_only_when_it_ends(
    db_path: Path,
) -> None:
    seen_idle = threading.Event()

    def policy(turn: st.ScriptTurn) -> Any:
        if turn.role == "worker":
            return f"worker: {last_user(turn)}"
        if turn.turn == 0:
            return st.reply("", st.call("spawn_session", role="worker", task="start",
                                        keep_open=True, budget={"model_runs": 5}))
        child = turn.result_json()["child_id"] if turn.turn == 1 else None
        if turn.turn == 1:
            assert seen_idle.wait(WAIT)
            return st.reply("", st.call("send_to_child", child_id=child, text="more"))
        if turn.turn == 2:
            sent = turn.result_json()
            assert sent["state"] in ("queued", "pending", "running")
            return st.reply("", st.call("wait_for_children"))  # until it ends
        return "; ".join(c["summary"] for c in turn.result_json()["children"])

    with st.Runtime.open(db_path, providers=[st.ScriptedProvider(policy)]) as rt:
        seen = Commits(rt)
        root = rt.create_session("r", capabilities=["session.spawn"])
        worker = seen.until(lambda: rt.children(root) and rt.children(root)[0].id)
        seen.until(lambda: rt.session(worker).state == "idle")
        assert rt.mailbox(root) == []  # idle is not an end: no announce-back
        seen_idle.set()
        seen.until(lambda: rt.session(worker).summary == "worker: more"
                   and rt.session(worker).state == "idle")
        assert rt.mailbox(root) == []
        rt.close_session(worker)
        (post,) = rt.mailbox(root)
        assert (post.sender_id, post.body["status"], post.body["reason"]) == (
            worker, "completed", "closed")
        assert post.body["usage"]["model_runs"] == 2
        assert rt.session(worker).keep_open
        assert rt.wait(root, timeout=WAIT).summary == "worker: more"


def test_close_child_ends_the_worker_and_wait_for_children_returns_its_last_answer(
    db_path: Path,
) -> None:
    worker_idle = threading.Event()
    ids: list[str] = []

    def policy(turn: st.ScriptTurn) -> Any:
        if turn.role == "worker":
            return f"worker: {last_user(turn)}"
        if turn.turn == 0:
            return st.reply("", st.call("spawn_session", role="worker", task="start",
                                        keep_open=True))
        if turn.turn == 1:
            ids.append(turn.result_json()["child_id"])
            assert worker_idle.wait(WAIT)
            return st.reply("", st.call("close_child", child_id=ids[0]))
        if turn.turn == 2:
            assert turn.result_json() == {"child_id": ids[0], "state": "completed"}
            return st.reply("", st.call("wait_for_children"))
        return turn.result_json()["children"][0]["summary"]

    with st.Runtime.open(db_path, providers=[st.ScriptedProvider(policy)]) as rt:
        seen = Commits(rt)
        root = rt.create_session("r", capabilities=["session.spawn"])
        worker = seen.until(lambda: rt.children(root) and rt.children(root)[0].id)
        seen.until(lambda: rt.session(worker).state == "idle")
        worker_idle.set()
        done = rt.wait(root, timeout=WAIT)
        assert (done.state, done.summary) == ("completed", "worker: start")
        closed = rt.session(worker)
        assert (closed.state, closed.reason) == ("completed", "closed")


def test_send_to_child_refuses_a_session_that_is_not_its_child(db_path: Path) -> None:
    def policy(turn: st.ScriptTurn) -> Any:
        if turn.turn == 0:
            return st.reply("", st.call("send_to_child", child_id="ses_other", text="hi"))
        return turn.tool_results[0].content

    with st.Runtime.open(db_path, providers=[st.ScriptedProvider(policy)]) as rt:
        root = rt.create_session("r", capabilities=["session.spawn"])
        done = rt.wait(root, timeout=WAIT)
        assert "not a child of this session" in (done.summary or "")
