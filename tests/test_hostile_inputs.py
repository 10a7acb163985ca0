"""Nothing from outside kills or wedges the runtime (issue 15, section 1).

A provider or a tool raising any ``BaseException``, an exception that cannot even be
printed, a model's malformed tool call, a host's malformed argument: each gets its
documented outcome -- the session's supervised crash, an error tool result the model
sees, or ``InvalidInput`` -- and the scheduler keeps running.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import pykka
import pytest
from pydantic import BaseModel

import sessiontree as st
from sessiontree.testing import Commits, FaultPlan, ManualClock

WAIT = 20.0
TOOL_CAPS = [f"tool:{name}" for name in  # deny by default: the test tools' capabilities
             ("lookup", "fragile", "read", "square", "echo", "measure", "strict")]
FAST_RESTARTS = st.Limits(restart=st.RestartPolicy(backoff_initial=0.0))


class UserBaseException(BaseException):
    """A user's own BaseException subclass."""


BASE_EXCEPTIONS = [SystemExit(3), KeyboardInterrupt(), GeneratorExit(), UserBaseException("mine")]


class NumberArgs(BaseModel):
    n: int


class TextArgs(BaseModel):
    text: str


class PathArgs(BaseModel):
    path: str


def open_rt(db: Path, policy: Any, *, tools: Any = (), **kwargs: Any) -> st.Runtime:
    kwargs.setdefault("limits", FAST_RESTARTS)
    provider = st.ScriptedProvider(policy)
    return st.Runtime.open(db, providers=[provider], tools=tools, **kwargs)


def payloads(rt: st.Runtime, sid: str, kind: str) -> list[dict[str, Any]]:
    return [e.payload for e in rt.events(session_id=sid, type_prefix=kind)]


def one_call_then_answer(bad_call: st.ToolCall, seen: list[str]) -> Any:
    """A model that makes ``bad_call`` once, then answers with what it saw. Sessions
    created later (by ``assert_went_on``) answer at once."""
    first: list[str] = []

    def policy(turn: st.ScriptTurn) -> st.ModelReply:
        first[:] = first or [turn.session_id]
        if turn.session_id != first[0]:
            return st.reply("recovered")
        if turn.turn == 0:
            return st.reply("", bad_call)
        seen.append(turn.tool_results[0].content)
        return st.reply("recovered")

    return policy


def assert_went_on(rt: st.Runtime, sid: str) -> None:
    """The session completed without a crash, and the scheduler still runs sessions."""
    info = rt.wait(sid, timeout=WAIT)
    assert (info.state, info.summary) == ("completed", "recovered")
    assert payloads(rt, sid, "FR-EVT-SESS-CRASHED") == []
    after = rt.create_session("the scheduler is still alive")
    assert rt.wait(after, timeout=WAIT).state == "completed"


# -- BaseException from a provider or a tool: that session's crash ------------------------
@pytest.mark.parametrize("exc", BASE_EXCEPTIONS, ids=lambda e: type(e).__name__)
def test_a_base_exception_from_a_provider_is_its_sessions_crash_not_the_schedulers(
    db_path: Path, exc: BaseException,
) -> None:
    calls: list[str] = []

    def policy(turn: st.ScriptTurn) -> str:
        calls.append(turn.session_id)
        if len(calls) == 1:
            raise exc
        return "recovered"

    with open_rt(db_path, policy) as rt:
        sid = rt.create_session("t", capabilities=TOOL_CAPS)
        info = rt.wait(sid, timeout=WAIT)
        assert (info.state, info.summary) == ("completed", "recovered")
        [crash] = payloads(rt, sid, "FR-EVT-SESS-CRASHED")
        assert crash["error_type"] == type(exc).__name__
        other = rt.create_session("the scheduler is still alive")
        assert rt.wait(other, timeout=WAIT).state == "completed"
        assert _scheduler_drains(rt)


def _scheduler_drains(rt: st.Runtime, timeout: float = WAIT) -> bool:
    """True once the scheduler holds no running job. ``wait`` returns on the commit that
    ends a session; the actor tells the scheduler it finished just after, so the test
    asks again (each ``stats`` is a round trip through the scheduler's inbox)."""
    deadline = time.monotonic() + timeout
    while rt.stats().running:
        if time.monotonic() > deadline:
            return False
    return True


@pytest.mark.parametrize("exc", BASE_EXCEPTIONS, ids=lambda e: type(e).__name__)
def test_a_base_exception_from_a_tool_is_its_sessions_crash_and_the_call_reruns(
    db_path: Path, exc: BaseException,
) -> None:
    attempts: list[int] = []

    @st.tool("lookup", NumberArgs, effect="read_only")
    def lookup(ctx: st.ToolContext, args: NumberArgs) -> int:
        attempts.append(ctx.attempt)
        if ctx.attempt == 1:
            raise exc
        return args.n

    def policy(turn: st.ScriptTurn) -> Any:
        return st.reply("", st.call("lookup", n=7)) if turn.turn == 0 else "recovered"

    with open_rt(db_path, policy, tools=[lookup]) as rt:
        sid = rt.create_session("t", capabilities=TOOL_CAPS)
        assert rt.wait(sid, timeout=WAIT).summary == "recovered"
        assert attempts == [1, 2]
        [crash] = payloads(rt, sid, "FR-EVT-SESS-CRASHED")
        assert crash["error_type"] == type(exc).__name__
        assert rt.wait(rt.create_session("still alive"), timeout=WAIT).state == "completed"


def test_cancelled_raised_when_nothing_was_cancelled_is_a_crash_not_a_wedge(db_path: Path) -> None:
    calls: list[int] = []

    def policy(turn: st.ScriptTurn) -> str:
        calls.append(1)
        if len(calls) == 1:
            raise st.Cancelled("a provider's own idea")
        return "recovered"

    with open_rt(db_path, policy) as rt:
        sid = rt.create_session("t", capabilities=TOOL_CAPS)
        info = rt.wait(sid, timeout=WAIT)
        assert (info.state, info.summary) == ("completed", "recovered")
        [crash] = payloads(rt, sid, "FR-EVT-SESS-CRASHED")
        assert crash["error_type"] == "Cancelled"


class ForeignActor(pykka.ThreadingActor):
    """Another library's actor in the same process. Dying of a BaseException, it makes
    pykka stop every actor of the process -- our scheduler included."""

    def on_receive(self, message: Any) -> None:
        raise KeyboardInterrupt


def test_a_scheduler_stopped_from_outside_fails_every_call_with_scheduler_died(
    db_path: Path,
) -> None:
    clock = ManualClock()  # the restart below waits on it: the job stays queued
    plan = FaultPlan().at("provider.before", times=1)
    rt = st.Runtime.open(db_path, providers=[st.ScriptedProvider(lambda t: "done")],
                         clock=clock, fault_hook=plan)
    try:
        seen = Commits(rt)
        sid = rt.create_session("t", capabilities=TOOL_CAPS)
        seen.until(lambda: rt.events(session_id=sid, type_prefix="FR-EVT-SESS-RESTARTED"))

        ForeignActor.start().tell("die")
        with pytest.raises(st.SchedulerDied):
            rt.wait(sid, timeout=WAIT)  # raised as soon as the scheduler stops

        tool = st.tool("noop", NumberArgs, effect="read_only")(lambda ctx, args: None)
        for call in (lambda: rt.create_session("t", capabilities=TOOL_CAPS), lambda: rt.cancel(sid), rt.stats,
                     lambda: rt.session(sid), rt.tree, lambda: rt.messages(sid), rt.events,
                     lambda: rt.wait_state(sid, "completed", timeout=1),
                     lambda: rt.register_tool(tool), lambda: rt.limits):
            with pytest.raises(st.SchedulerDied) as died:
                call()
            assert isinstance(died.value, st.SessionTreeError)
            assert died.value.reason == st.Reason.SCHEDULER_DIED
    finally:
        rt.close()

    with st.Runtime.open(db_path, providers=[st.ScriptedProvider(lambda t: "done")]) as again:
        info = again.wait(sid, timeout=WAIT)  # the queued restart resumes
        assert (info.state, info.summary) == ("completed", "done")


# -- exceptions that cannot be printed ------------------------------------------------------
class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no str for you")

    def __repr__(self) -> str:
        raise RuntimeError("no repr either")

    @property
    def retryable(self) -> bool:
        raise RuntimeError("nor this")


def test_a_provider_exception_whose_str_and_repr_raise_is_still_a_supervised_crash(
    db_path: Path,
) -> None:
    calls: list[int] = []

    def policy(turn: st.ScriptTurn) -> str:
        calls.append(1)
        if len(calls) == 1:
            raise Unprintable()
        return "recovered"

    with open_rt(db_path, policy) as rt:
        sid = rt.create_session("t", capabilities=TOOL_CAPS)
        info = rt.wait(sid, timeout=WAIT)
        assert (info.state, info.summary) == ("completed", "recovered")
        [crash] = payloads(rt, sid, "FR-EVT-SESS-CRASHED")
        assert crash["error_type"] == "Unprintable"
        assert "str() and repr() raise" in crash["error"]


def test_a_tool_exception_whose_str_and_repr_raise_is_a_failed_call(db_path: Path) -> None:
    @st.tool("fragile", NumberArgs, effect="read_only")
    def fragile(ctx: st.ToolContext, args: NumberArgs) -> int:
        raise Unprintable()

    seen: list[str] = []
    with open_rt(db_path, one_call_then_answer(st.call("fragile", n=1), seen),
                 tools=[fragile]) as rt:
        sid = rt.create_session("t", capabilities=TOOL_CAPS)
        assert_went_on(rt, sid)
        result = json.loads(seen[0])
        assert (result["error_type"], result["reason"]) == ("Unprintable", "tool_error")


# -- a model's mistakes: an error result it sees, the session goes on ----------------------
def test_a_nul_byte_in_a_workspace_path_is_an_error_result(db_path: Path, tmp_path: Path) -> None:
    @st.tool("read", PathArgs, effect="read_only")
    def read(ctx: st.ToolContext, args: PathArgs) -> str:
        return ctx.workspace_path(args.path).read_text()

    seen: list[str] = []
    provider_calls: list[str] = []
    model = one_call_then_answer(st.call("read", path="notes\x00.md"), seen)

    def policy(turn: st.ScriptTurn) -> st.ModelReply:
        provider_calls.append(turn.session_id)
        return model(turn)

    with open_rt(db_path, policy, tools=[read]) as rt:
        sid = rt.create_session("t", workspace=tmp_path, capabilities=TOOL_CAPS)
        assert_went_on(rt, sid)
        assert json.loads(seen[0])["reason"] == "path_refused"  # workspace path safety
        assert provider_calls == [sid, sid, provider_calls[-1]]  # no paid restart


DEEP = 100_000


def _deep_dict() -> dict[str, Any]:
    deep: dict[str, Any] = {}
    for _ in range(DEEP):
        deep = {"n": deep}
    return deep


@pytest.mark.parametrize("form", ["object", "json_text"])
def test_tool_arguments_nested_100_000_levels_deep_are_an_error_result(
    db_path: Path, form: str,
) -> None:
    @st.tool("square", NumberArgs, effect="read_only")
    def square(ctx: st.ToolContext, args: NumberArgs) -> int:
        return args.n * args.n

    arguments: Any = _deep_dict() if form == "object" else (
        '{"n":' + "[" * DEEP + "]" * DEEP + "}")
    seen: list[str] = []
    bad = st.ToolCall(name="square", arguments=arguments)
    with open_rt(db_path, one_call_then_answer(bad, seen), tools=[square]) as rt:
        sid = rt.create_session("t", capabilities=TOOL_CAPS)
        assert_went_on(rt, sid)
        result = json.loads(seen[0])
        assert result["reason"] == "invalid_args"
        assert "nested deeper than" in result["error"]


def test_a_lone_surrogate_in_a_tool_name_is_an_unknown_tool_result_stored_losslessly(
    db_path: Path,
) -> None:
    seen: list[str] = []
    with open_rt(db_path, one_call_then_answer(st.call("sq\ud800uare", n=2), seen)) as rt:
        sid = rt.create_session("t", capabilities=TOOL_CAPS)
        assert_went_on(rt, sid)
        assert json.loads(seen[0])["reason"] == "unknown_tool"
        [asked] = [m for m in rt.messages(sid) if m.role == "assistant"][:1]
        assert asked.body["tool_calls"][0]["name"] == "sq\ud800uare"


def test_a_lone_surrogate_in_tool_arguments_is_stored_and_returned_losslessly(
    db_path: Path,
) -> None:
    @st.tool("echo", TextArgs, effect="read_only")
    def echo(ctx: st.ToolContext, args: TextArgs) -> str:
        return args.text

    seen: list[str] = []
    text = "caf\ud800e"
    with open_rt(db_path, one_call_then_answer(st.call("echo", text=text), seen),
                 tools=[echo]) as rt:
        sid = rt.create_session("t", capabilities=TOOL_CAPS)
        assert_went_on(rt, sid)
        assert seen == [text]
        [asked] = [m for m in rt.messages(sid) if m.role == "assistant"][:1]
        assert asked.body["tool_calls"][0]["arguments"] == {"text": text}


def test_a_lone_surrogate_in_a_spawn_role_is_an_invalid_args_result(db_path: Path) -> None:
    seen: list[str] = []
    bad = st.call("spawn_session", role="re\udcffsearcher", task="t")
    with open_rt(db_path, one_call_then_answer(bad, seen)) as rt:
        sid = rt.create_session("t", capabilities=["session.spawn"])
        assert_went_on(rt, sid)
        assert json.loads(seen[0])["reason"] == "invalid_args"
        assert rt.tree(sid)[0].children == []


def test_a_lone_surrogate_in_reply_text_is_stored_losslessly(db_path: Path) -> None:
    text = "done \ud83d without its pair"
    with open_rt(db_path, lambda turn: text) as rt:
        sid = rt.create_session("t", capabilities=TOOL_CAPS)
        info = rt.wait(sid, timeout=WAIT)
        assert (info.state, info.summary) == ("completed", text)
        assert rt.messages(sid)[-1].body["content"] == text
        assert st.verify_store(rt._store).ok


def test_a_tool_result_that_is_not_valid_json_is_made_valid_before_the_model_sees_it(
    db_path: Path,
) -> None:
    @st.tool("measure", NumberArgs, effect="read_only")
    def measure(ctx: st.ToolContext, args: NumberArgs) -> dict[str, float]:
        return {"mean": math.nan, "max": math.inf, "n": float(args.n)}

    def strict(constant: str) -> Any:
        raise ValueError(f"{constant} is not JSON")

    seen: list[str] = []
    with open_rt(db_path, one_call_then_answer(st.call("measure", n=3), seen),
                 tools=[measure]) as rt:
        sid = rt.create_session("t", capabilities=TOOL_CAPS)
        assert_went_on(rt, sid)
        assert json.loads(seen[0], parse_constant=strict) == {"mean": None, "max": None, "n": 3.0}


# -- a tool's ordinary exception: a failed call, unless the tool says otherwise -------------
def test_a_tools_ordinary_exception_is_a_failed_call_with_its_type_and_message(
    db_path: Path, tmp_path: Path,
) -> None:
    @st.tool("read", PathArgs, effect="read_only")
    def read(ctx: st.ToolContext, args: PathArgs) -> str:
        return ctx.workspace_path(args.path).read_text()  # FileNotFoundError

    seen: list[str] = []
    with open_rt(db_path, one_call_then_answer(st.call("read", path="missing.md"), seen),
                 tools=[read]) as rt:
        sid = rt.create_session("t", workspace=tmp_path, capabilities=TOOL_CAPS)
        assert_went_on(rt, sid)
        result = json.loads(seen[0])
        assert (result["error_type"], result["reason"]) == ("FileNotFoundError", "tool_error")
        assert result["error"].startswith("FileNotFoundError: ") and "missing.md" in result["error"]
        [event] = payloads(rt, sid, "FR-EVT-SESS-TOOL-RESULT")
        assert (event["ok"], event["reason"]) == (False, "tool_error")


def test_a_tool_declared_on_error_crash_crashes_its_session(db_path: Path) -> None:
    attempts: list[int] = []

    @st.tool("strict", NumberArgs, effect="read_only", on_error="crash")
    def strict(ctx: st.ToolContext, args: NumberArgs) -> int:
        attempts.append(ctx.attempt)
        if ctx.attempt == 1:
            raise LookupError("strict tool")
        return 1

    def policy(turn: st.ScriptTurn) -> Any:
        return st.reply("", st.call("strict", n=1)) if turn.turn == 0 else "recovered"

    with open_rt(db_path, policy, tools=[strict]) as rt:
        sid = rt.create_session("t", capabilities=TOOL_CAPS)
        assert rt.wait(sid, timeout=WAIT).summary == "recovered"
        assert attempts == [1, 2]
        [crash] = payloads(rt, sid, "FR-EVT-SESS-CRASHED")
        assert (crash["error_type"], crash["error"]) == ("LookupError", "strict tool")


# -- a host's mistakes: InvalidInput -------------------------------------------------------
@pytest.mark.parametrize("kwargs", [
    {"capabilities": "fs.write"},
    {"capabilities": 5},
    {"meta": {"when": object()}},
    {"meta": {"ratio": math.nan}},
    {"meta": ["not", "a", "dict"]},
    {"role": "r\ud800"},
    {"max_children": True},
])
def test_malformed_session_arguments_raise_invalid_input(
    db_path: Path, kwargs: dict[str, Any],
) -> None:
    with open_rt(db_path, lambda t: "x") as rt:
        with pytest.raises(st.InvalidInput):
            rt.create_session("t", **kwargs)
        assert rt.tree() == []  # nothing was created


@pytest.mark.parametrize("make", [
    lambda: st.tool("t", NumberArgs, effect="sometimes"),
    lambda: st.tool("t", NumberArgs, on_error="ignore"),  # type: ignore[arg-type]
    lambda: st.Tool("t", "d", NumberArgs, lambda c, a: None, effect="sometimes"),  # type: ignore[arg-type]
], ids=["tool-effect", "tool-on_error", "Tool-effect"])
def test_a_tool_declared_with_an_unknown_option_raises_invalid_input(make: Any) -> None:
    with pytest.raises(st.InvalidInput):
        make()


@pytest.mark.parametrize("make", [
    lambda: st.Budget(model_runs=True),
    lambda: st.Budget(tokens="12"),
    lambda: st.Budget(cost="0.5"),
    lambda: st.Usage(input_tokens=True),
    lambda: st.Usage(output_tokens=2.0),
    lambda: st.Limits(max_concurrent_runs=True),
    lambda: st.Limits(reserve_tokens="10"),
    lambda: st.RestartPolicy(max_restarts="3"),
], ids=["budget-bool", "budget-str", "budget-cost-str", "usage-bool", "usage-float",
        "limits-bool", "limits-str", "restart-str"])
def test_values_of_the_wrong_type_are_refused_not_coerced(make: Any) -> None:
    with pytest.raises(st.InvalidInput):
        make()


@pytest.mark.parametrize("timeout", [math.nan, -1.0, math.inf, "5", True])
def test_a_wait_with_a_timeout_that_is_not_a_duration_raises_invalid_input(
    db_path: Path, timeout: Any,
) -> None:
    with open_rt(db_path, lambda t: "x") as rt:
        sid = rt.create_session("t", start=False)
        with pytest.raises(st.InvalidInput):
            rt.wait(sid, timeout=timeout)
        with pytest.raises(st.InvalidInput):
            rt.wait_state(sid, "running", timeout=timeout)


@pytest.mark.parametrize("filters", [{"session": "ses_x"}, {"limit": -1}, {"after": "0"}])
def test_events_with_an_unknown_or_malformed_filter_raise_invalid_input(
    db_path: Path, filters: dict[str, Any],
) -> None:
    with open_rt(db_path, lambda t: "x") as rt, pytest.raises(st.InvalidInput):
        rt.events(**filters)


@pytest.mark.parametrize("call", [
    lambda rt: rt.session("ses_\ud800"),
    lambda rt: rt.wait(b"ses_x", timeout=1),
    lambda rt: rt.cancel(rt.create_session("t", start=False), note="\udc80"),
    lambda rt: rt.messages(42),
    lambda rt: rt.events(session_id="ses_\ud800"),
    lambda rt: rt.resolve("tc_\ud800", "done"),
], ids=["session", "wait", "cancel", "messages", "events", "resolve"])
def test_an_id_that_cannot_be_one_raises_invalid_input(db_path: Path, call: Any) -> None:
    with open_rt(db_path, lambda t: "x") as rt:
        with pytest.raises(st.InvalidInput):
            call(rt)
        assert rt.wait(rt.create_session("still alive"), timeout=WAIT).state == "completed"


def test_verify_store_accepts_a_path_and_refuses_anything_else(db_path: Path) -> None:
    with open_rt(db_path, lambda t: "fine") as rt:
        rt.wait(rt.create_session("t", capabilities=TOOL_CAPS), timeout=WAIT)
    for target in (db_path, str(db_path)):
        report = st.verify_store(target)
        assert report.ok and report.messages == 2
    with pytest.raises(st.StoreError):
        st.verify_store(db_path.with_name("missing.db"))
    with pytest.raises(st.InvalidInput):
        st.verify_store(42)  # type: ignore[arg-type]


# -- budgets that cannot fund a single run ---------------------------------------------------
@pytest.mark.parametrize("budget", [st.Budget(model_runs=3), st.Budget(tokens=20_000)],
                         ids=["runs", "tokens"])
def test_a_spawn_the_parent_cannot_fund_with_one_run_is_rejected_with_budget(
    db_path: Path, budget: st.Budget,
) -> None:
    seen: list[str] = []
    spawn = st.call("spawn_session", role="child", task="t")  # asks for a fair share
    with open_rt(db_path, one_call_then_answer(spawn, seen)) as rt:
        sid = rt.create_session("t", capabilities=["session.spawn"], budget=budget)
        assert_went_on(rt, sid)
        assert json.loads(seen[0])["reason"] == "budget"
        assert rt.tree(sid)[0].children == []
        [rejected] = payloads(rt, sid, "FR-EVT-SESS-SPAWN-REJECTED")
        assert rejected["reason"] == "budget"


def test_a_session_whose_token_budget_is_below_the_reservation_is_refused_at_creation(
    db_path: Path,
) -> None:
    with open_rt(db_path, lambda t: "x") as rt:
        with pytest.raises(st.InvalidInput) as refused:
            rt.create_session("t", budget=st.Budget(tokens=100))
        assert "100" in str(refused.value) and "4096" in str(refused.value)
        assert (refused.value.facts["tokens"], refused.value.facts["reserve_tokens"]) == (100, 4096)
        assert rt.tree() == []
