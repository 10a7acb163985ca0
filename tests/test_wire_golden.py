"""Golden wire-format tests, both directions, per adapter.

The JSON documents in ``tests/golden/`` are shaped after the providers' published API
references (each says which part in its ``about``): requests we must send for a
neutral request, and replies (whole documents and streamed chunks/events) we must read
into the neutral reply -- text, several tool calls in one reply, tool errors, usage,
and malformed tool calls, which the Tool Gate answers with error results."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field

import sessiontree as st
from sessiontree.persistence.capabilities import CapabilityToken
from sessiontree.providers import anthropic_wire, openai_wire
from sessiontree.providers.received import Received
from sessiontree.tools.gate import judge
from sessiontree.tools.registry import ToolRegistry

GOLDEN = Path(__file__).resolve().parent / "golden"


def golden(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((GOLDEN / name).read_text(encoding="utf-8"))
    return doc


def neutral_reply(received: Received) -> dict[str, Any]:
    return {
        "content": received.content,
        "tool_calls": [c.model_dump() for c in received.tool_calls()],
        "input_tokens": received.input_tokens,
        "output_tokens": received.output_tokens,
        "stop_reason": received.stop_reason,
    }


# -- requests: neutral -> wire -----------------------------------------------------------------
def test_openai_request_matches_the_chat_completions_document() -> None:
    case = golden("openai_request_tools.json")
    request = st.ModelRequest.model_validate(case["neutral"])
    body = openai_wire.request_body(request, case["model"], max_tokens_field=case["max_tokens_field"])
    assert body == case["wire"]


def test_anthropic_request_matches_the_messages_document() -> None:
    case = golden("anthropic_request_tools.json")
    request = st.ModelRequest.model_validate(case["neutral"])
    assert anthropic_wire.request_body(request, case["model"]) == case["wire"]


def test_anthropic_request_merges_consecutive_user_side_turns_and_never_sends_an_empty_one() -> None:
    request = st.ModelRequest(session_id="s", role="r", model="m", messages=(
        st.ModelMessage(role="user", content="first"),
        st.ModelMessage(role="user", content="second"),
        st.ModelMessage(role="assistant", content=""),
        st.ModelMessage(role="user", content="third"),
    ))
    body = anthropic_wire.request_body(request, "m", stream=False)
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "first"},
                                     {"type": "text", "text": "second"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "(no content)"}]},
        {"role": "user", "content": [{"type": "text", "text": "third"}]},
    ]
    assert "stream" not in body and "system" not in body and "tools" not in body


# -- replies: wire -> neutral -------------------------------------------------------------------
@pytest.mark.parametrize("name", [
    "openai_completion_text.json", "openai_completion_tool_calls.json",
    "openai_completion_malformed.json",
])
def test_openai_completion_documents_read_into_the_neutral_reply(name: str) -> None:
    case = golden(name)
    assert neutral_reply(openai_wire.read_completion(case["document"])) == case["expected"]


def test_openai_stream_chunks_fold_into_the_same_reply() -> None:
    case = golden("openai_stream_tool_calls.json")
    received = Received()
    for chunk in case["chunks"]:
        openai_wire.add_chunk(received, chunk)
    assert neutral_reply(received) == case["expected"]


@pytest.mark.parametrize("name", ["anthropic_message_text.json", "anthropic_message_tool_use.json"])
def test_anthropic_message_documents_read_into_the_neutral_reply(name: str) -> None:
    case = golden(name)
    assert neutral_reply(anthropic_wire.read_message(case["document"])) == case["expected"]


@pytest.mark.parametrize("name", ["anthropic_stream_tool_use.json", "anthropic_stream_malformed.json"])
def test_anthropic_stream_events_fold_into_the_neutral_reply(name: str) -> None:
    case = golden(name)
    received = Received()
    for event in case["events"]:
        anthropic_wire.add_event(received, event)
    assert neutral_reply(received) == case["expected"]


def test_a_whole_anthropic_message_and_its_stream_read_the_same() -> None:
    streamed = Received()
    for event in golden("anthropic_stream_tool_use.json")["events"]:
        anthropic_wire.add_event(streamed, event)
    message = {"content": [{"type": "text", "text": streamed.content}, *[
        {"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments}
        for c in streamed.tool_calls()]], "stop_reason": "tool_use",
        "usage": {"input_tokens": 472, "output_tokens": 89}}
    assert neutral_reply(anthropic_wire.read_message(message)) == neutral_reply(streamed)


# -- malformed calls: error results, not crashes ------------------------------------------------
class WeatherArgs(BaseModel):
    location: str = Field(description="The city and state, e.g. San Francisco, CA")
    unit: Literal["celsius", "fahrenheit"] | None = None


WEATHER = st.Tool("get_current_weather", "Get the current weather", WeatherArgs,
                  lambda ctx, args: "sunny", effect=st.EffectClass.READ_ONLY, capability="weather")


@pytest.mark.parametrize("name,read", [
    ("openai_completion_malformed.json", lambda case: openai_wire.read_completion(case["document"])),
    ("anthropic_stream_malformed.json", lambda case: _events(case)),
])
def test_the_tool_gate_answers_malformed_calls_with_error_reasons(name: str, read: Any) -> None:
    case = golden(name)
    registry = ToolRegistry([WEATHER])
    session = SimpleNamespace(id="ses_1", state="running", spawn_count=0)
    held = [CapabilityToken("tok_1", "ses_1", "ses_1", "weather", None, None, False, None, 0.0)]
    decisions = [judge(registry, session, held, 1.0, call)  # type: ignore[arg-type]
                 for call in read(case).tool_calls()]
    assert [None if d.allowed else d.reason for d in decisions] == case["gate"]


def _events(case: dict[str, Any]) -> Received:
    received = Received()
    for event in case["events"]:
        anthropic_wire.add_event(received, event)
    return received


def test_a_reply_cut_off_by_a_cancel_keeps_what_arrived_and_estimates_the_rest() -> None:
    received = Received()
    openai_wire.add_chunk(received, {"choices": [{"index": 0, "delta": {"content": "x" * 40}}]})
    received.cancelled = True
    request = st.ModelRequest(session_id="s", role="r", model="m",
                              messages=(st.ModelMessage(role="user", content="y" * 84),))
    reply = received.reply(request, st.Price(input_per_mtok=1.0, output_per_mtok=2.0))
    assert (reply.content, reply.stop_reason) == ("x" * 40, "cancelled")
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (26, 11)
    assert reply.usage.cost == pytest.approx((26 * 1.0 + 11 * 2.0) / 1e6)
