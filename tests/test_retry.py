"""An operator retries a failed session from its latest checkpoint, as a new attempt;
its parent is told again only if it is still waiting for it."""

from __future__ import annotations

import contextlib
import io
import threading
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import sessiontree as st
from sessiontree.console.cli import main
from sessiontree.testing import Commits, FaultPlan, InjectedFault

WAIT = 10.0


class Args(BaseModel):
    key: str


def payloads(rt: st.Runtime, sid: str, event_type: str) -> list[dict[str, Any]]:
    return [e.payload for e in rt.events(session_id=sid, type_prefix=event_type)
            if e.type == event_type]


def not_retryable(step: str, facts: dict[str, Any]) -> BaseException:
    return InjectedFault(step, facts, retryable=False)


class ByRole:
    """Adds the session's role to the facts so a FaultPlan can match on it."""

    def __init__(self, plan: FaultPlan) -> None:
        self.plan = plan
        self.store: Any = None

    def __call__(self, step: str, facts: dict[str, Any]) -> None:
        if self.store is not None and "session_id" in facts:
            facts = {**facts, "role": self.store.session(facts["session_id"]).role}
        self.plan(step, facts)


def test_a_failed_session_retried_resumes_from_its_checkpoint_as_a_new_attempt(
    db_path: Path,
) -> None:
    lookups: list[int] = []
    broken = [True]

    @st.tool("lookup", Args, effect="read_only")
    def lookup(ctx: st.ToolContext, args: Args) -> str:
        lookups.append(ctx.attempt)
        return "v"

    def policy(turn: st.ScriptTurn) -> Any:
        if turn.turn == 0:
            return st.reply("", st.call("lookup", key="k"))
        if broken.pop() if broken else False:  # the second turn fails once, for good
            raise InjectedFault("provider", {}, retryable=False)
        return f"answer after {turn.tool_results[0].content}"

    with st.Runtime.open(db_path, providers=[st.ScriptedProvider(policy)], tools=[lookup]) as rt:
        sid = rt.create_session("t", restart="transient", capabilities=["tool:lookup"])
        failed = rt.wait(sid, timeout=WAIT)
        assert (failed.state, failed.reason) == ("failed", "crashed")

        job = rt.retry(sid, note="the provider is back")
        done = rt.wait(sid, timeout=WAIT)

        assert (done.state, done.summary) == ("completed", "answer after v")
        assert lookups == [1]  # the checkpoint held the tool's result: not run again
        (retried,) = payloads(rt, sid, "FR-EVT-SESS-RETRIED")
        assert (retried["job_id"], retried["attempt"], retried["failed_reason"]) == (job, 2, "crashed")
        assert (retried["note"], retried["parent_told_again"]) == ("the provider is back", None)
        moves = [(p["from_state"], p["to_state"], p["reason"])
                 for p in payloads(rt, sid, "FR-EVT-SESS-STATE")]
        assert ("failed", "queued", "retried") in moves
        assert [(j.state, j.attempt) for j in rt.jobs(sid)] == [
            ("completed", 1), ("failed", 1), ("completed", 2)]


def test_only_a_failed_session_can_be_retried(db_path: Path) -> None:
    with st.Runtime.open(db_path, providers=[st.ScriptedProvider(lambda t: "ok")]) as rt:
        sid = rt.create_session("t")
        rt.wait(sid, timeout=WAIT)
        with pytest.raises(st.IllegalTransition):
            rt.retry(sid)
        cancelled = rt.create_session("c", start=False)
        rt.cancel(cancelled)
        with pytest.raises(st.IllegalTransition):
            rt.retry(cancelled)


def tree(child_behaviour: Any, parent_waits: threading.Event | None = None) -> Any:
    def policy(turn: st.ScriptTurn) -> Any:
        if turn.role == "worker":
            return child_behaviour(turn)
        if turn.turn == 0:
            return st.reply("", st.call("spawn_session", role="worker", task="w",
                                        restart="temporary"))
        if turn.turn == 1:
            if parent_waits is not None:
                assert parent_waits.wait(WAIT)
            return st.reply("", st.call("wait_for_children"))
        (child,) = turn.result_json()["children"]
        return f"{child['status']}: {child['summary']}"

    return policy


def test_a_retried_child_whose_parent_still_waits_tells_it_again(db_path: Path) -> None:
    hook = ByRole(FaultPlan().at("provider.before", times=1, role="worker"))
    release = threading.Event()
    with st.Runtime.open(db_path, providers=[st.ScriptedProvider(tree(lambda t: "fixed",
                         release))], fault_hook=hook) as rt:
        hook.store = rt._store
        seen = Commits(rt)
        root = rt.create_session("r", capabilities=["session.spawn"])
        worker = seen.until(lambda: rt.children(root) and rt.children(root)[0].id)
        seen.until(lambda: rt.session(worker).state == "failed")
        assert [p.sender_id for p in rt.mailbox(root)] == [worker]  # told, not yet read

        rt.retry(worker)
        # the failure is withdrawn (the retried worker may already have announced anew)
        assert [p.body["status"] for p in rt.mailbox(root)] in ([], ["completed"])
        release.set()
        done = rt.wait(root, timeout=WAIT)

        assert (done.state, done.summary) == ("completed", "completed: fixed")
        (post,) = rt.mailbox(root)
        assert (post.body["status"], post.consumed_at is not None) == ("completed", True)
        (retried,) = payloads(rt, worker, "FR-EVT-SESS-RETRIED")
        assert retried["parent_told_again"] is True
        announced = payloads(rt, worker, "FR-EVT-SESS-SPAWN-ANNOUNCED")
        assert [a["status"] for a in announced] == ["failed", "completed"]
        # the budget was carved again, then returned: the parent's accounts balance
        r = rt.session(root)
        assert r.carved == st.Usage()
        assert r.spent.model_runs == r.usage.model_runs + rt.session(worker).usage.model_runs


def test_a_retried_child_whose_parent_already_read_its_end_is_not_told_twice(
    db_path: Path,
) -> None:
    hook = ByRole(FaultPlan().at("provider.before", times=1, role="worker"))
    parent_moves_on = threading.Event()

    def policy(turn: st.ScriptTurn) -> Any:
        if turn.role == "worker":
            return "fixed"
        if turn.turn == 0:
            return st.reply("", st.call("spawn_session", role="worker", task="w",
                                        restart="temporary"))
        if turn.turn == 1:
            return st.reply("", st.call("wait_for_children"))
        if turn.turn == 2:
            assert parent_moves_on.wait(WAIT)  # the parent read the failure; it works on
            return st.reply("", st.call("wait_for_children"))  # nothing left to await
        return "parent done"

    with st.Runtime.open(db_path, providers=[st.ScriptedProvider(policy)],
                         fault_hook=hook) as rt:
        hook.store = rt._store
        seen = Commits(rt)
        root = rt.create_session("r", capabilities=["session.spawn"])
        worker = seen.until(lambda: rt.children(root) and rt.children(root)[0].id)
        seen.until(lambda: rt.mailbox(root) and rt.mailbox(root)[0].consumed_at is not None)

        rt.retry(worker)
        done = rt.wait(worker, timeout=WAIT)
        parent_moves_on.set()

        assert done.state == "completed"
        (post,) = rt.mailbox(root)
        assert post.body["status"] == "failed"  # what the parent read; not posted again
        (retried,) = payloads(rt, worker, "FR-EVT-SESS-RETRIED")
        assert retried["parent_told_again"] is False
        assert rt.wait(root, timeout=WAIT).summary == "parent done"


def test_a_child_whose_parent_has_ended_is_not_retried(db_path: Path) -> None:
    hook = ByRole(FaultPlan().at("provider.before", times=1, role="worker"))
    with st.Runtime.open(db_path, providers=[st.ScriptedProvider(tree(lambda t: "x"))],
                         fault_hook=hook) as rt:
        hook.store = rt._store
        root = rt.create_session("r", capabilities=["session.spawn"])
        rt.wait(root, timeout=WAIT)
        (worker,) = rt.children(root)
        assert worker.state == "failed"
        with pytest.raises(st.InvalidInput, match="has ended"):
            rt.retry(worker.id)


def cli(*argv: str | Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def test_sessiontree_retry_queues_a_failed_session_and_the_next_open_finishes_it(
    db_path: Path,
) -> None:
    plan = FaultPlan().at("provider.before", times=1, error=not_retryable)
    provider = st.ScriptedProvider(lambda t: "second time lucky")
    with st.Runtime.open(db_path, providers=[provider], fault_hook=plan) as rt:
        sid = rt.create_session("t")
        assert rt.wait(sid, timeout=WAIT).state == "failed"
    code, out, _ = cli("retry", "--db", db_path, sid, "--note", "try again")
    assert code == 0 and "queued again" in out
    code, _, err = cli("retry", "--db", db_path, sid)
    assert code == 2 and "illegal transition" in err  # queued now, not failed

    with st.Runtime.open(db_path, providers=[provider]) as rt:
        done = rt.wait(sid, timeout=WAIT)
        assert (done.state, done.summary) == ("completed", "second time lucky")
        (retried,) = payloads(rt, sid, "FR-EVT-SESS-RETRIED")
        assert retried["note"] == "try again"
