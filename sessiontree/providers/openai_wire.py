"""OpenAI Chat Completions wire format, both directions, as plain JSON documents.

Request (``POST /v1/chat/completions``): ``messages`` with ``system``, ``user``,
``assistant`` (``tool_calls`` of ``type: function`` whose ``arguments`` is a JSON
*string*) and ``tool`` (``tool_call_id``) roles; ``tools`` of ``type: function``;
``stream: true`` with ``stream_options.include_usage`` so the last chunk carries the
usage. Reply: a ``chat.completion`` document, or ``chat.completion.chunk`` documents
whose ``delta.tool_calls`` fragments are joined by ``index``.

Pure functions: the adapter (``providers.openai_chat``) feeds them what the SDK
received; the golden tests feed them recorded documents.
"""

from __future__ import annotations

import json
from typing import Any

from sessiontree.providers.base import ModelMessage, ModelRequest, ToolCall
from sessiontree.providers.received import Received
from sessiontree.providers.tool_surface import render

STOP_REASONS = {"stop": "end_turn", "tool_calls": "tool_use", "function_call": "tool_use",
                "length": "max_tokens", "content_filter": "refusal"}
"""OpenAI ``finish_reason`` -> the neutral stop reason (Anthropic's names)."""


def _arguments(call: ToolCall) -> str:
    if isinstance(call.arguments, str):
        return call.arguments
    return json.dumps(call.arguments, ensure_ascii=False, separators=(",", ":"))


def message(m: ModelMessage) -> dict[str, Any]:
    if m.role == "tool":
        return {"role": "tool", "tool_call_id": m.tool_call_id or "", "content": m.model_text()}
    if m.role == "assistant" and m.tool_calls:
        return {
            "role": "assistant",
            "content": m.content or None,
            "tool_calls": [
                {"id": c.id, "type": "function",
                 "function": {"name": c.name, "arguments": _arguments(c)}}
                for c in m.tool_calls
            ],
        }
    return {"role": m.role, "content": m.model_text()}


def request_body(
    request: ModelRequest, model: str, *, max_tokens_field: str = "max_completion_tokens",
    stream: bool = True,
) -> dict[str, Any]:
    """The JSON body of a Chat Completions request (also the SDK's keyword arguments)."""
    body: dict[str, Any] = {"model": model, "messages": [message(m) for m in request.messages]}
    if request.tools:
        body["tools"] = [render(t, "openai") for t in request.tools]
    if request.max_output_tokens:
        body[max_tokens_field] = request.max_output_tokens
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def _usage(received: Received, usage: Any) -> None:
    if isinstance(usage, dict):
        if isinstance(usage.get("prompt_tokens"), int):
            received.input_tokens = usage["prompt_tokens"]
        if isinstance(usage.get("completion_tokens"), int):
            received.output_tokens = usage["completion_tokens"]


def add_chunk(received: Received, chunk: dict[str, Any]) -> None:
    """Fold one ``chat.completion.chunk`` into ``received`` (only choice 0 is used)."""
    _usage(received, chunk.get("usage"))
    for choice in chunk.get("choices") or ():
        if choice.get("index", 0) != 0:
            continue
        delta = choice.get("delta") or {}
        if isinstance(delta.get("content"), str):
            received.text.append(delta["content"])
        for position, fragment in enumerate(delta.get("tool_calls") or ()):
            parts = received.call(int(fragment.get("index", position)))
            if fragment.get("id"):
                parts.id = str(fragment["id"])
            function = fragment.get("function") or {}
            name = function.get("name")
            if isinstance(name, str) and name and name != parts.name:
                parts.name += name
            if isinstance(function.get("arguments"), str):
                parts.arguments += function["arguments"]
        if choice.get("finish_reason"):
            reason = str(choice["finish_reason"])
            received.stop_reason = STOP_REASONS.get(reason, reason)


def read_completion(document: dict[str, Any]) -> Received:
    """A whole ``chat.completion`` document (the non-streaming reply)."""
    received = Received()
    _usage(received, document.get("usage"))
    choices = document.get("choices") or ()
    if choices:
        choice = choices[0]
        msg = choice.get("message") or {}
        if isinstance(msg.get("content"), str):
            received.text.append(msg["content"])
        for i, call in enumerate(msg.get("tool_calls") or ()):
            parts = received.call(i)
            parts.id = str(call.get("id") or "")
            function = call.get("function") or {}
            parts.name = str(function.get("name") or "")
            raw = function.get("arguments")
            if isinstance(raw, dict):
                parts.parsed = raw
            elif isinstance(raw, str):
                parts.arguments = raw
        reason = str(choice.get("finish_reason") or "stop")
        received.stop_reason = STOP_REASONS.get(reason, reason)
    return received
