"""Spans: one ModelSessionSpan per session life, an ActivitySpan per model_run and per
tool call, one trace per tree with each child under its parent's spawning call -- in
the store, in ``sessiontree trace``, and exported to OpenTelemetry with the GenAI
semantic conventions (checked with the SDK's in-memory exporter)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import sessiontree as st
from sessiontree.console.cli import main
from sessiontree.testing import Commits, FaultPlan, ManualClock

WAIT = 10.0


def tree_policy(turn: st.ScriptTurn) -> Any:
    """A root spawns two workers and waits; each worker spawns one helper and waits."""
    if turn.role in ("root", "worker"):
        kid = "worker" if turn.role == "root" else "helper"
        if turn.turn == 0:
            n = 2 if turn.role == "root" else 1
            return st.reply("", *[st.call("spawn_session", role=kid, task=f"{kid} {i}",
                                          capabilities=["session.spawn"]) for i in range(n)])
        if turn.turn == 1:
            return st.reply("", st.call("wait_for_children"))
    return st.ModelReply(content=f"{turn.role} done",
                         usage=st.Usage(input_tokens=10, output_tokens=5, cost=0.01))


@pytest.fixture
def tree(db_path: Path) -> tuple[Path, str]:
    with st.Runtime.open(db_path, providers=[st.ScriptedProvider(tree_policy)]) as rt:
        root = rt.create_session("go", capabilities=["session.spawn"])
        assert rt.wait(root, timeout=WAIT).state == "completed"
    return db_path, root


def open_again(db: Path) -> st.Runtime:
    return st.Runtime.open(db, providers=[st.ScriptedProvider(tree_policy)])


def test_each_session_has_one_span_for_its_life_closed_with_its_end(tree: tuple[Path, str]) -> None:
    db, root = tree
    with open_again(db) as rt:
        sessions = rt.sessions(root_id=root)
        spans = rt.spans(root_id=root)
    life = {s.model_session_id: s for s in spans if s.kind == "session"}
    assert set(life) == {s.id for s in sessions} and len(sessions) == 5
    for s in sessions:
        span = life[s.id]
        assert (span.start, span.end, span.status) == (s.created_at, s.ended_at, "ok")
        assert span.input_tokens == s.usage.input_tokens  # its own usage


def test_one_trace_holds_the_tree_and_each_child_sits_under_its_parents_spawn_call(
    tree: tuple[Path, str],
) -> None:
    db, root = tree
    with open_again(db) as rt:
        spans = rt.spans(root_id=root)
        sessions = {s.id: s for s in rt.sessions(root_id=root)}
    by_id = {s.span_id: s for s in spans}
    assert {s.trace_id for s in spans} == {spans[0].trace_id}
    for span in spans:
        if span.kind == "session" and sessions[span.model_session_id].parent_id is None:
            assert span.parent_span_id is None
            continue
        parent = by_id[span.parent_span_id]  # every other span's parent is in the trace
        if span.kind == "session":
            assert (parent.kind, parent.name) == ("tool_call", "spawn_session")
            assert parent.model_session_id == sessions[span.model_session_id].parent_id
        elif span.kind == "model_run":
            assert (parent.kind, parent.model_session_id) == ("session", span.model_session_id)
        else:
            assert (parent.kind, parent.model_session_id) == ("model_run", span.model_session_id)
            assert parent.job_id == span.job_id


def test_a_model_run_span_per_job_with_the_tokens_and_cost_it_was_charged(
    tree: tuple[Path, str],
) -> None:
    db, root = tree
    with open_again(db) as rt:
        jobs = rt.jobs()
        runs = {s.job_id: s for s in rt.spans(root_id=root) if s.kind == "model_run"}
        assert set(runs) == {j.id for j in jobs}
        usage = {e.job_id: e.payload["run"] for e in rt.events(type_prefix="FR-EVT-SESS-USAGE")}
    for job_id, span in runs.items():
        charged = usage.get(job_id, {"input_tokens": 0, "output_tokens": 0, "cost": 0.0})
        assert (span.input_tokens, span.output_tokens) == (
            charged["input_tokens"], charged["output_tokens"])
        assert span.cost == pytest.approx(charged["cost"])
        assert span.status == "ok" and span.end is not None and span.end >= span.start


def test_spans_of_one_session_or_one_job(tree: tuple[Path, str]) -> None:
    db, root = tree
    with open_again(db) as rt:
        worker = rt.children(root)[0].id
        mine = rt.spans(session_id=worker)
        assert mine and {s.model_session_id for s in mine} == {worker}
        job = rt.jobs(session_id=worker)[0].id
        assert {s.kind for s in rt.spans(job_id=job)} == {"model_run", "tool_call"}
        with pytest.raises(st.InvalidInput):
            rt.spans()
        with pytest.raises(st.UnknownSession):
            rt.spans(session_id="ses_nope")


def test_a_restarted_run_keeps_one_span_counting_its_attempts(db_path: Path) -> None:
    clock = ManualClock()
    plan = FaultPlan().at("provider.before", times=1)
    with st.Runtime.open(db_path, providers=[st.ScriptedProvider(lambda t: "ok")], clock=clock,
                         fault_hook=plan, lease_ttl=3600) as rt:
        sid = rt.create_session("go")
        Commits(rt).until(lambda: rt.events(session_id=sid, type_prefix="FR-EVT-SESS-RESTARTED"))
        (open_run,) = [s for s in rt.spans(session_id=sid) if s.kind == "model_run"]
        assert (open_run.end, open_run.status) == (None, None)  # open while it waits
        rt.stats()
        clock.advance(60)
        rt.wait(sid, timeout=WAIT)
        (run,) = [s for s in rt.spans(session_id=sid) if s.kind == "model_run"]
    assert (run.attempt, run.status, run.start) == (2, "ok", open_run.start)


def test_a_denied_call_and_a_cancelled_session_close_their_spans_with_their_status(
    db_path: Path,
) -> None:
    def policy(turn: st.ScriptTurn) -> Any:
        return st.reply("", st.call("nope")) if turn.turn == 0 else "never stored"

    def latency(request: st.ModelRequest) -> float:
        # the second turn hangs until the cancel below (ScriptedProvider waits on it)
        return 60.0 if len(request.messages) > 1 else 0.0  # sleep-ok

    provider = st.ScriptedProvider(policy, latency=latency)
    with st.Runtime.open(db_path, providers=[provider]) as rt:
        sid = rt.create_session("go")
        Commits(rt).until(lambda: len(rt.jobs(session_id=sid)) == 2
                          and rt.session(sid).state == "running")
        rt.cancel(sid)
        spans = rt.spans(session_id=sid)
    (denied,) = [s for s in spans if s.name == "nope"]
    assert (denied.kind, denied.status) == ("tool_call", "error")
    (life,) = [s for s in spans if s.kind == "session"]
    assert (life.status, life.status_detail) == ("cancelled", "cancelled_by_host")


def test_trace_cli_draws_every_session_of_the_tree_with_durations_tokens_and_cost(
    tree: tuple[Path, str],
) -> None:
    db, root = tree
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["trace", "--db", str(db), root]) == 0
    text = out.getvalue()
    with open_again(db) as rt:
        ids = [s.id for s in rt.sessions(root_id=root)]
    assert all(sid in text for sid in ids)
    assert "5 sessions" in text.splitlines()[0]
    assert "tool spawn_session" in text and "tokens 10 in / 5 out" in text and "cost 0.01" in text
    assert sum(" ok" in line and "s " in line for line in text.splitlines()) >= 5


def test_trace_cli_of_a_child_draws_only_its_part(tree: tuple[Path, str]) -> None:
    db, root = tree
    with open_again(db) as rt:
        worker = rt.children(root)[0]
        helper = rt.children(worker.id)[0]
        other = rt.children(root)[1]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["trace", "--db", str(db), worker.id]) == 0
    text = out.getvalue()
    assert worker.id in text and helper.id in text
    assert root not in text and other.id not in text


# -- OpenTelemetry ------------------------------------------------------------------------------
def otel_tree(db: Path) -> tuple[list[ReadableSpan], str]:
    exporter = InMemorySpanExporter()
    with st.Runtime.open(db, providers=[st.ScriptedProvider(tree_policy)]) as rt:
        rt.add_span_processor(SimpleSpanProcessor(exporter))
        root = rt.create_session("go", capabilities=["session.spawn"])
        rt.wait(root, timeout=WAIT)
    return list(exporter.get_finished_spans()), root


def test_otel_spans_follow_the_genai_conventions(db_path: Path) -> None:
    spans, root = otel_tree(db_path)
    ops = {s.attributes["gen_ai.operation.name"] for s in spans if s.attributes}
    assert ops == {"invoke_agent", "chat", "execute_tool"}
    for s in spans:
        a = dict(s.attributes or {})
        assert a["gen_ai.conversation.id"] == root
        assert a["sessiontree.model_session_id"].startswith("ses_")
        if a["gen_ai.operation.name"] == "invoke_agent":
            assert s.name == f"invoke_agent {a['gen_ai.agent.name']}"
            assert a["gen_ai.agent.id"] == a["sessiontree.model_session_id"]
            assert a["gen_ai.provider.name"] == "scripted" and s.kind is SpanKind.INTERNAL
        elif a["gen_ai.operation.name"] == "chat":
            assert s.name == "chat default" and s.kind is SpanKind.CLIENT
            assert a["gen_ai.request.model"] == "default"
            assert {"gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"} <= a.keys()
        else:
            assert s.name == f"execute_tool {a['gen_ai.tool.name']}"
            assert a["gen_ai.tool.call.id"].startswith("tc_")
        assert s.status.status_code is StatusCode.UNSET
    assert len([s for s in spans if s.name.startswith("invoke_agent")]) == 5


def test_otel_child_agent_and_its_model_calls_sit_under_the_parents_spawning_span(
    db_path: Path,
) -> None:
    spans, root = otel_tree(db_path)
    by_id = {s.context.span_id: s for s in spans}
    assert len({s.context.trace_id for s in spans}) == 1
    children = [s for s in spans if s.name.startswith("invoke_agent")
                and s.attributes and s.attributes["gen_ai.agent.id"] != root]
    assert len(children) == 4
    for child in children:
        assert child.parent is not None
        spawn = by_id[child.parent.span_id]
        assert spawn.name == "execute_tool spawn_session"
        chats = [s for s in spans if s.name.startswith("chat") and s.parent
                 and s.parent.span_id == child.context.span_id]
        assert chats, "a child's model calls nest under its invoke_agent span"
        assert all(c.attributes and c.attributes["sessiontree.model_session_id"]
                   == child.attributes["gen_ai.agent.id"] for c in chats)


def test_otel_replay_of_a_stored_tree_matches_the_live_export(db_path: Path) -> None:
    live, root = otel_tree(db_path)
    replay = InMemorySpanExporter()
    with open_again(db_path) as rt:
        count = rt.export_spans(SimpleSpanProcessor(replay), root)
        with pytest.raises(st.InvalidInput):
            rt.add_span_processor(object())
    assert count == len(live)

    def key(s: ReadableSpan) -> tuple[Any, ...]:
        return (s.context.span_id, s.parent.span_id if s.parent else None, s.name,
                s.start_time, s.end_time, dict(s.attributes or {}))

    assert sorted(map(key, replay.get_finished_spans())) == sorted(map(key, live))


def test_otel_failed_session_is_an_error_span_with_its_error_type(db_path: Path) -> None:
    exporter = InMemorySpanExporter()
    with st.Runtime.open(db_path, providers=[st.ScriptedProvider(
            lambda t: st.reply("", st.call("wait_for_children")))]) as rt:
        rt.add_span_processor(SimpleSpanProcessor(exporter))
        sid = rt.create_session("go", budget=st.Budget(model_runs=1))
        rt.wait(sid, timeout=WAIT)
    (agent,) = [s for s in exporter.get_finished_spans() if s.name.startswith("invoke_agent")]
    assert agent.status.status_code is StatusCode.ERROR
    assert agent.attributes and agent.attributes["error.type"] == "budget_exceeded"


def test_cancelling_a_tree_mid_way_leaves_no_span_open(db_path: Path) -> None:
    def policy(turn: st.ScriptTurn) -> Any:
        if turn.role == "root":
            if turn.turn == 0:
                return st.reply("", st.call("spawn_session", role="worker", task="w"))
            return st.reply("", st.call("wait_for_children"))
        return "never stored"

    def latency(request: st.ModelRequest) -> float:
        return 60.0 if request.role == "worker" else 0.0  # sleep-ok: ends on cancel

    with st.Runtime.open(db_path, providers=[st.ScriptedProvider(policy, latency=latency)]) as rt:
        root = rt.create_session("go", capabilities=["session.spawn"])
        rt.wait_state(root, "waiting", timeout=WAIT)
        rt.cancel(root)
        spans = rt.spans(root_id=root)
    assert [s for s in spans if s.end is None] == []
    (wait,) = [s for s in spans if s.name == "wait_for_children"]
    assert (wait.status, wait.status_detail) == ("cancelled", "session_ended")
    assert {s.status for s in spans if s.kind == "session"} == {"cancelled"}


def test_a_model_run_in_flight_shows_as_an_open_span(db_path: Path) -> None:
    import threading

    entered = threading.Event()

    def latency(request: st.ModelRequest) -> float:
        entered.set()
        return 60.0  # sleep-ok: ScriptedProvider waits on the run's cancel token

    with st.Runtime.open(db_path, providers=[st.ScriptedProvider(lambda t: "ok",
                                                                 latency=latency)]) as rt:
        sid = rt.create_session("go")
        assert entered.wait(WAIT)
        (job,) = rt.jobs(session_id=sid)
        (run,) = [s for s in rt.spans(session_id=sid) if s.kind == "model_run"]
        assert (run.job_id, run.end, run.status, run.attempt) == (job.id, None, None, 1)
        (life,) = [s for s in rt.spans(root_id=sid) if s.kind == "session"]
        assert run.parent_span_id == life.span_id
        assert rt.spans(job_id=job.id) == [run]
        rt.cancel(sid)
        (ended,) = [s for s in rt.spans(session_id=sid) if s.kind == "model_run"]
    assert (ended.start, ended.status) == (run.start, "cancelled")


def test_a_run_cut_off_by_process_death_keeps_its_charges_in_its_span(db_path: Path) -> None:
    import threading

    from pydantic import BaseModel

    class NoArgs(BaseModel):
        pass

    entered = threading.Event()
    runs: list[int] = []

    @st.tool("slow", NoArgs, effect="read_only")
    def slow(ctx: st.ToolContext, args: NoArgs) -> str:
        runs.append(ctx.attempt)
        if len(runs) == 1:
            entered.set()
            ctx.cancel.wait(60)  # sleep-ok: cut off by close(), as a kill -9 would
            ctx.cancel.raise_if_cancelled()  # nothing after it is committed
        return "ok"

    def policy(turn: st.ScriptTurn) -> Any:
        if turn.turn == 0:
            return st.ModelReply(tool_calls=(st.ToolCall(name="slow", arguments={}),),
                                 usage=st.Usage(input_tokens=7, output_tokens=3))
        return "done"

    with st.Runtime.open(db_path, providers=[st.ScriptedProvider(policy)], tools=[slow],
                         lease_ttl=3600) as rt:
        sid = rt.create_session("go", capabilities=["tool:slow"])
        assert entered.wait(WAIT)
    with st.Runtime.open(db_path, providers=[st.ScriptedProvider(policy)], tools=[slow],
                         lease_ttl=3600) as rt:
        rt.wait(sid, timeout=WAIT)
        first = rt.jobs(session_id=sid)[0]
        (run,) = [s for s in rt.spans(job_id=first.id) if s.kind == "model_run"]
        (call,) = [s for s in rt.spans(session_id=sid) if s.kind == "tool_call"]
    assert (run.input_tokens, run.output_tokens, run.attempt, run.status) == (7, 3, 2, "ok")
    assert (call.name, call.status, call.parent_span_id) == ("slow", "ok", run.span_id)
