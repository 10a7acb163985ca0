"""Bad input gets a typed error, or an error tool result for the model; the scheduler lives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import BaseModel

import sessiontree as st


class NumberArgs(BaseModel):
    n: int


@st.tool("square", NumberArgs, effect="read_only")
def square(ctx: st.ToolContext, args: NumberArgs) -> int:
    return args.n * args.n


def test_unknown_session_ids_raise_a_typed_error(db_path: Path) -> None:
    with st.Runtime.open(db_path, providers=[st.ScriptedProvider(lambda t: "x")]) as rt:
        for call in (rt.session, rt.wait, rt.cancel, rt.messages):
            with pytest.raises(st.UnknownSession) as info:
                call("ses_missing")
            assert isinstance(info.value, st.SessionTreeError)


@pytest.mark.parametrize("kwargs", [{"max_concurrent_runs": 0}, {"max_depth": -1},
                                    {"provider_limits": {"p": 0}}, {"reserve_tokens": -5}])
def test_invalid_limits_are_refused_at_construction(kwargs: dict[str, object]) -> None:
    with pytest.raises(st.InvalidInput):
        st.Limits(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("kwargs", [
    {"budget": {"model_runs": -1}}, {"role": ""}, {"provider": "nope"},
    {"restart": "sometimes"}, {"child_strategy": "all_for_none"}, {"workspace": "/no/such/dir"},
    {"capabilities": "fs.read"}, {"capabilities": [""]}, {"capabilities": [3]},
    {"consent": "openai"}, {"consent": [None]}, {"capabilities_expire_at": "soon"},
])
def test_invalid_session_arguments_raise_invalid_input(db_path: Path, kwargs: dict[str, object]) -> None:
    with st.Runtime.open(db_path, providers=[st.ScriptedProvider(lambda t: "x")]) as rt, \
            pytest.raises(st.InvalidInput):
        rt.create_session("t", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("bad_call", "reason"), [
    (st.call("no_such_tool"), "unknown_tool"),
    (st.call("square", n="not a number"), "invalid_args"),
    (st.ToolCall(name="square", arguments="{not json"), "invalid_args"),
    (st.call("spawn_session", role="c", task="t"), "capability_denied"),
])
def test_a_models_bad_tool_call_is_an_error_result_it_sees(
    db_path: Path, bad_call: st.ToolCall, reason: str
) -> None:
    seen: list[str] = []

    def policy(turn: st.ScriptTurn) -> st.ModelReply:
        if turn.turn == 0:
            return st.reply("", bad_call)
        seen.append(turn.tool_results[0].content)
        return st.reply("recovered")

    with st.Runtime.open(db_path, providers=[st.ScriptedProvider(policy)], tools=[square]) as rt:
        sid = rt.create_session("t", capabilities=["tool:square"])
        assert rt.wait(sid, timeout=10).summary == "recovered"
        assert json.loads(seen[0])["reason"] == reason
        after = rt.create_session("the scheduler is still alive")
        assert rt.wait(after, timeout=10).state == "completed"


def test_a_provider_returning_garbage_is_supervised_not_fatal(db_path: Path) -> None:
    class Garbage:
        name = "garbage"
        local = True

        def complete(self, request: st.ModelRequest, cancel: st.CancelToken) -> object:
            return {"not": "a reply"}

    limits = st.Limits(restart=st.RestartPolicy(max_restarts=1, backoff_initial=0.0))
    ok = st.ScriptedProvider(lambda t: "fine", name="ok")
    with st.Runtime.open(db_path, providers=[Garbage(), ok], limits=limits) as rt:  # type: ignore[list-item]
        sid = rt.create_session("t", provider="garbage")
        info = rt.wait(sid, timeout=20)
        assert (info.state, info.reason) == ("failed", "restart_intensity")
        assert rt.events(session_id=sid, type_prefix="FR-EVT-SESS-CRASHED")
        other = rt.create_session("t", provider="ok")
        assert rt.wait(other, timeout=10).state == "completed"


def test_an_unregistered_event_type_or_bad_payload_is_rejected(db_path: Path) -> None:
    with st.Runtime.open(db_path) as rt:
        with pytest.raises(st.InvalidInput), rt._store.transaction() as tx:
            tx.event("FR-EVT-NOT-A-THING", None, None, {})
        with pytest.raises(st.InvalidInput), rt._store.transaction() as tx:
            tx.event("FR-EVT-SESS-STATE", None, None, {"from_state": 1})
