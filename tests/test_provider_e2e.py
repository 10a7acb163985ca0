"""End to end through the official SDK clients, against a loopback server speaking each
provider's protocol (streamed replies as server-sent events): sessions run, tools are
called, a 429 cools the provider down, a cancel closes the stream, a 401 fails the
session. No test leaves 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from llm_server import (
    ANTHROPIC_401,
    ANTHROPIC_429,
    OPENAI_401,
    OPENAI_429,
    LLMServer,
    Reply,
    Seen,
    anthropic_text,
    anthropic_tools,
    error,
    openai_text,
    openai_tools,
)
from pydantic import BaseModel

import sessiontree as st
from sessiontree.testing import Commits, ManualClock

CLOUD = ["openai", "openai-compatible", "anthropic"]
"""These tests point cloud adapters at a loopback server: consent is given up front."""
WAIT = 20.0


@dataclass
class Dialect:
    name: str
    make: Callable[[str], Any]
    text: Callable[..., Reply]
    tools: Callable[..., Reply]
    e429: dict[str, Any]
    e401: dict[str, Any]


DIALECTS = {
    "openai": Dialect(
        "openai",
        lambda url: st.OpenAIProvider("gpt-4o-mini", api_key="sk-test", base_url=url + "/v1",
                                      name="openai", local=False,
                                      max_tokens_field="max_completion_tokens"),
        openai_text, openai_tools, OPENAI_429, OPENAI_401),
    "anthropic": Dialect(
        "anthropic",
        lambda url: st.AnthropicProvider("claude-sonnet-4-20250514", api_key="sk-ant-test",
                                         base_url=url, local=False),
        anthropic_text, anthropic_tools, ANTHROPIC_429, ANTHROPIC_401),
}


@pytest.fixture(params=sorted(DIALECTS))
def dialect(request: pytest.FixtureRequest) -> Dialect:
    return DIALECTS[request.param]


@pytest.fixture
def server() -> Iterator[LLMServer]:
    with LLMServer() as s:
        yield s


class LookupArgs(BaseModel):
    key: str


@st.tool("lookup", LookupArgs, effect="read_only", capability="kb.read")
def lookup(ctx: st.ToolContext, args: LookupArgs) -> str:
    """Look a key up."""
    return f"value of {args.key}"


def events(rt: st.Runtime, sid: str, prefix: str) -> list[dict[str, Any]]:
    return [e.payload for e in rt.events(session_id=sid, type_prefix=prefix)]


# -- replies ---------------------------------------------------------------------------------
def test_a_streamed_text_reply_completes_the_session_with_the_providers_usage_priced(
    db_path: Path, server: LLMServer, dialect: Dialect,
) -> None:
    server.push(dialect.text("Hello there", 20, 5))
    provider = dialect.make(server.url)
    with st.Runtime.open(db_path, providers=[provider]) as rt:
        sid = rt.create_session("say hello", system="Be brief.", budget=st.Budget(cost=1.0), consent=CLOUD)
        done = rt.wait(sid, timeout=WAIT)

    assert (done.state, done.summary) == ("completed", "Hello there")
    price = provider.price("default")
    assert price is not None
    assert (done.usage.input_tokens, done.usage.output_tokens) == (20, 5)
    assert done.usage.cost == pytest.approx(price.cost(20, 5))
    (seen,) = server.seen
    assert seen.body["stream"] is True
    if dialect.name == "openai":
        assert seen.path == "/v1/chat/completions"
        assert seen.headers["authorization"] == "Bearer sk-test"
        assert seen.body["stream_options"] == {"include_usage": True}
        assert seen.body["max_completion_tokens"] == 4096
        assert seen.body["messages"][0] == {"role": "system", "content": "Be brief."}
    else:
        assert seen.path == "/v1/messages"
        assert seen.body["system"] == "Be brief."
        assert seen.body["max_tokens"] == 4096
        assert seen.body["messages"] == [
            {"role": "user", "content": [{"type": "text", "text": "say hello"}]}]


def _data(call_id: str, text: str) -> str:
    """The data inside a tool result's labelled untrusted block (asserting the block)."""
    head, _, rest = text.partition("\n")
    body, _, tail = rest.rpartition("\n")
    assert head.startswith('<untrusted-data source="tool" tool=') and f'call_id="{call_id}"' in head
    assert tail == "</untrusted-data>"
    return body


def _tool_results(dialect: Dialect, seen: Seen) -> list[tuple[str, str, bool]]:
    """(call id, data, is_error) of each tool result the request sent back."""
    if dialect.name == "openai":
        return [(m["tool_call_id"], _data(m["tool_call_id"], m["content"]), False)
                for m in seen.body["messages"] if m["role"] == "tool"]
    out = []
    for m in seen.body["messages"]:
        for block in m["content"] if m["role"] == "user" else ():
            if block["type"] == "tool_result":
                out.append((block["tool_use_id"], _data(block["tool_use_id"], block["content"]),
                            block.get("is_error", False)))
    return out


def _tool_use_ids(dialect: Dialect, seen: Seen) -> list[tuple[str, str]]:
    """(call id, tool name) of each tool call in the assistant turn sent back."""
    if dialect.name == "openai":
        return [(c["id"], c["function"]["name"]) for m in seen.body["messages"]
                if m["role"] == "assistant" for c in m.get("tool_calls", ())]
    return [(b["id"], b["name"]) for m in seen.body["messages"] if m["role"] == "assistant"
            for b in m["content"] if b["type"] == "tool_use"]


def test_several_tool_calls_in_one_reply_run_and_their_results_go_back_paired_by_id(
    db_path: Path, server: LLMServer, dialect: Dialect,
) -> None:
    server.push(dialect.tools(("call_a", "lookup", '{"key": "a"}'),
                              ("call_b", "lookup", '{"key": "b"}')),
                dialect.text("a and b looked up"))
    with st.Runtime.open(db_path, providers=[dialect.make(server.url)], tools=[lookup]) as rt:
        sid = rt.create_session("look up a and b", capabilities=["kb.read"], consent=CLOUD)
        done = rt.wait(sid, timeout=WAIT)
        roles = [m.role for m in rt.messages(sid)]

    assert (done.state, done.summary) == ("completed", "a and b looked up")
    assert roles == ["system", "user", "assistant", "tool", "tool", "assistant"] or roles == [
        "user", "assistant", "tool", "tool", "assistant"]
    first, second = server.seen
    tools_offered = first.body["tools"]
    if dialect.name == "openai":
        assert tools_offered[0]["type"] == "function"
        assert tools_offered[0]["function"]["name"] == "lookup"
        assert tools_offered[0]["function"]["parameters"]["required"] == ["key"]
    else:
        assert tools_offered[0]["name"] == "lookup"
        assert tools_offered[0]["input_schema"]["required"] == ["key"]
    calls = _tool_use_ids(dialect, second)
    results = _tool_results(dialect, second)
    assert [name for _, name in calls] == ["lookup", "lookup"]
    assert [(cid, content) for cid, content, _ in results] == [
        (calls[0][0], "value of a"), (calls[1][0], "value of b")]


def test_malformed_tool_calls_become_error_results_the_model_sees_and_the_session_goes_on(
    db_path: Path, server: LLMServer, dialect: Dialect,
) -> None:
    server.push(dialect.tools(("call_1", "lookup", '{"key": '),     # arguments not JSON
                              ("call_2", "browse_web", "{}"),        # a tool never offered
                              ("", "lookup", '{"key": "z"}')),       # no tool call id
                dialect.text("I will try again"))
    with st.Runtime.open(db_path, providers=[dialect.make(server.url)], tools=[lookup]) as rt:
        sid = rt.create_session("look up z", capabilities=["kb.read"], consent=CLOUD)
        done = rt.wait(sid, timeout=WAIT)
        tool_events = events(rt, sid, "FR-EVT-SESS-TOOL-RESULT")

    assert (done.state, done.summary) == ("completed", "I will try again")
    assert [(e["ok"], e["reason"]) for e in tool_events] == [
        (False, "invalid_args"), (False, "unknown_tool"), (True, None)]
    results = _tool_results(dialect, server.seen[1])
    assert [json.loads(c)["reason"] for _, c, _ in results[:2]] == ["invalid_args", "unknown_tool"]
    assert results[2][1] == "value of z"
    if dialect.name == "anthropic":
        assert [is_error for _, _, is_error in results] == [True, True, False]
    # every result is paired with a call id the provider saw, even the call that had none
    assert [cid for cid, _, _ in results] == [cid for cid, _ in _tool_use_ids(dialect, server.seen[1])]
    assert all(cid for cid, _, _ in results)


# -- failures and back-pressure ------------------------------------------------------------------
def test_a_429_with_retry_after_cools_the_provider_down_then_the_run_succeeds(
    db_path: Path, server: LLMServer, dialect: Dialect,
) -> None:
    clock = ManualClock()
    server.push(error(429, dialect.e429, **{"retry-after": "7"}),
                dialect.text("first"), dialect.text("second"))
    with st.Runtime.open(db_path, providers=[dialect.make(server.url)], clock=clock) as rt:
        seen = Commits(rt)
        sid = rt.create_session("one", consent=CLOUD)
        (cool,) = seen.until(lambda: events(rt, sid, "FR-EVT-SESS-SCHED-COOLDOWN"))
        assert (cool["status"], cool["retry_after"], cool["reason"]) == (
            429, 7.0, "provider_rate_limited")
        assert cool["until"] == clock.now() + 7.0
        assert cool["concurrency"] == 4  # the default limit of 8, halved
        other = rt.create_session("two", consent=CLOUD)  # the cool-down holds every run of the provider
        rt.stats()  # a barrier: the scheduler has tried to dispatch it
        assert events(rt, other, "FR-EVT-SESS-SCHED-THROTTLED") == [{"limit": "provider_cooldown"}]
        clock.advance(6.9)
        rt.stats()  # a barrier: the scheduler has handled the wake-up, if any
        assert server.requests() == 1
        assert rt.session(sid).state == "queued"
        clock.advance(0.1)
        first, second = rt.wait(sid, timeout=WAIT), rt.wait(other, timeout=WAIT)
        crashed = events(rt, sid, "FR-EVT-SESS-CRASHED")
        retried = events(rt, sid, "FR-EVT-SESS-SCHED-RETRIED")

    assert (first.state, second.state) == ("completed", "completed")
    assert {first.summary, second.summary} == {"first", "second"}
    assert crashed == []  # a provider's 429 is not a crash
    assert retried == [{"attempt": 2, "delay": 7.0, "reason": "provider_cooldown"}]
    assert server.requests() == 3


def test_a_cancel_mid_stream_closes_the_stream_and_charges_what_was_received(
    db_path: Path, server: LLMServer, dialect: Dialect,
) -> None:
    server.push(dialect.text("Hello there, a long answer", hold_after=3))
    provider = dialect.make(server.url)
    with st.Runtime.open(db_path, providers=[provider]) as rt:
        sid = rt.create_session("talk", consent=CLOUD)
        assert server.held.wait(WAIT)
        rt.cancel(sid)
        assert rt.session(sid).state == "cancelled"
        assert server.disconnected.wait(WAIT), "the stream was not closed"
    # closing joined the session's actor, which charged the call before it ended
    with st.Runtime.open(db_path, providers=[provider]) as rt:
        charged = rt.session(sid)

    assert (charged.state, charged.usage.model_runs) == ("cancelled", 1)
    assert charged.usage.input_tokens > 0
    assert server.requests() == 1


def test_a_401_fails_the_session_with_provider_auth_and_is_not_retried(
    db_path: Path, server: LLMServer, dialect: Dialect,
) -> None:
    server.push(error(401, dialect.e401))
    with st.Runtime.open(db_path, providers=[dialect.make(server.url)]) as rt:
        sid = rt.create_session("hello", consent=CLOUD)
        done = rt.wait(sid, timeout=WAIT)
        failed = events(rt, sid, "FR-EVT-SESS-SCHED-FAILED")
        crashed = events(rt, sid, "FR-EVT-SESS-CRASHED")

    assert (done.state, done.reason) == ("failed", "provider_auth")
    assert failed[0]["reason"] == "provider_auth" and "401" in failed[0]["error"]
    assert crashed == []
    assert server.requests() == 1  # the SDK's own retries are off: max_retries=0


# -- OpenAI-compatible local servers and cost ------------------------------------------------------
def test_an_openai_compatible_server_on_loopback_is_local_free_and_gets_max_tokens(
    db_path: Path, server: LLMServer,
) -> None:
    server.push(openai_text("hi from llama", 11, 3))
    ollama = st.OpenAIProvider("llama3.2", base_url=server.url + "/v1", name="ollama")
    assert ollama.local
    with st.Runtime.open(db_path, providers=[ollama]) as rt:
        sid = rt.create_session("hi", budget=st.Budget(cost=0.01), consent=CLOUD)  # priced: free
        done = rt.wait(sid, timeout=WAIT)

    assert (done.state, done.summary) == ("completed", "hi from llama")
    assert (done.usage.cost, done.usage.unpriced_runs) == (0.0, 0)
    assert server.seen[0].body["model"] == "llama3.2"
    assert server.seen[0].body["max_tokens"] == 4096
    assert server.seen[0].headers["authorization"].startswith("Bearer ")


def test_an_unpriced_model_records_its_cost_as_unknown_and_refuses_a_cost_budget(
    db_path: Path, server: LLMServer,
) -> None:
    server.push(openai_text("ok", 10, 2))
    remote = st.OpenAIProvider("my-finetune", api_key="sk-test", base_url=server.url + "/v1",
                               local=False)
    with st.Runtime.open(db_path, providers=[remote]) as rt:
        with pytest.raises(st.InvalidInput) as refused:
            rt.create_session("hi", budget=st.Budget(cost=1.0), consent=CLOUD)
        assert refused.value.reason == st.Reason.COST_UNKNOWN
        sid = rt.create_session("hi", budget=st.Budget(tokens=10_000), consent=CLOUD)
        done = rt.wait(sid, timeout=WAIT)

    assert done.state == "completed"
    assert (done.usage.cost, done.usage.unpriced_runs, done.usage.tokens) == (0.0, 1, 12)


def test_missing_credentials_fail_the_session_with_provider_auth_before_any_request(
    db_path: Path, server: LLMServer, monkeypatch: pytest.MonkeyPatch,
) -> None:
    for var in ("OPENAI_API_KEY", "OPENAI_ADMIN_KEY", "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    providers = [st.OpenAIProvider("gpt-4o-mini"),  # no key: the client is never made
                 st.AnthropicProvider("claude-sonnet-4-20250514", base_url=server.url)]
    with st.Runtime.open(db_path, providers=providers) as rt:
        sids = [rt.create_session("hi", provider=p.name, consent=CLOUD) for p in providers]
        done = [rt.wait(sid, timeout=WAIT) for sid in sids]

    assert [(d.state, d.reason) for d in done] == [("failed", "provider_auth")] * 2
    assert server.requests() == 0
