"""Anthropic Messages wire format, both directions, as plain JSON documents.

Request (``POST /v1/messages``): the system prompt in its own ``system`` field;
``messages`` alternating ``user`` and ``assistant``, where an assistant turn holds
``text`` and ``tool_use`` blocks (``id``, ``name``, ``input`` object) and the tool
results that answer it are ``tool_result`` blocks (``tool_use_id``, ``content``,
``is_error``) of the next ``user`` turn; ``tools`` with ``input_schema``;
``max_tokens`` (required); ``stream: true``. Reply: a ``message`` document, or the
stream's events (``message_start``, ``content_block_start`` / ``_delta`` / ``_stop``
with ``text_delta`` and ``input_json_delta``, ``message_delta`` with the stop reason
and cumulative output tokens, ``message_stop``).

Pure functions: the adapter (``providers.anthropic_messages``) feeds them what the SDK
received; the golden tests feed them recorded documents.
"""

from __future__ import annotations

from typing import Any

from sessiontree.providers.base import ModelMessage, ModelRequest
from sessiontree.providers.received import Received
from sessiontree.providers.tool_surface import render

DEFAULT_MAX_TOKENS = 4096
"""``max_tokens`` when the request names none: Anthropic requires the field."""


def _assistant_blocks(m: ModelMessage) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if m.content:
        blocks.append({"type": "text", "text": m.content})
    for c in m.tool_calls:
        # ``input`` must be an object: arguments a model sent as unreadable text are
        # kept, as text, under one key (the error result that answered them says why).
        data = c.arguments if isinstance(c.arguments, dict) else {"_unparsed": c.arguments}
        blocks.append({"type": "tool_use", "id": c.id, "name": c.name, "input": data})
    if not blocks:  # Anthropic refuses an empty assistant turn
        blocks.append({"type": "text", "text": "(no content)"})
    return blocks


def _tool_result(m: ModelMessage) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": m.tool_call_id or "",
                             "content": m.model_text()}
    if m.is_error:
        block["is_error"] = True
    return block


def messages_and_system(history: tuple[ModelMessage, ...]) -> tuple[list[dict[str, Any]], str]:
    """The ``messages`` list (consecutive user-side blocks merged into one turn, as
    the API requires alternation) and the joined system prompt."""
    system = [m.content for m in history if m.role == "system" and m.content]
    out: list[dict[str, Any]] = []
    for m in history:
        if m.role == "system":
            continue
        if m.role == "assistant":
            out.append({"role": "assistant", "content": _assistant_blocks(m)})
            continue
        block = _tool_result(m) if m.role == "tool" else {"type": "text", "text": m.model_text()}
        if out and out[-1]["role"] == "user":
            out[-1]["content"].append(block)
        else:
            out.append({"role": "user", "content": [block]})
    return out, "\n\n".join(system)


def request_body(request: ModelRequest, model: str, *, stream: bool = True) -> dict[str, Any]:
    """The JSON body of a Messages request (also the SDK's keyword arguments)."""
    messages, system = messages_and_system(request.messages)
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": request.max_output_tokens or DEFAULT_MAX_TOKENS,
        "messages": messages,
    }
    if system:
        body["system"] = system
    if request.tools:
        body["tools"] = [render(t, "anthropic") for t in request.tools]
    if stream:
        body["stream"] = True
    return body


def _usage(received: Received, usage: Any, *, start: bool) -> None:
    if not isinstance(usage, dict):
        return
    counted = [usage.get(k) for k in ("input_tokens", "cache_creation_input_tokens",
                                       "cache_read_input_tokens")]
    if any(isinstance(n, int) for n in counted):
        received.input_tokens = sum(n for n in counted if isinstance(n, int))
    if isinstance(usage.get("output_tokens"), int) and (usage["output_tokens"] or not start):
        received.output_tokens = usage["output_tokens"]


def _block_start(received: Received, index: int, block: dict[str, Any]) -> None:
    if block.get("type") == "text":
        if block.get("text"):
            received.text.append(str(block["text"]))
    elif block.get("type") == "tool_use":
        parts = received.call(index)
        parts.id = str(block.get("id") or "")
        parts.name = str(block.get("name") or "")
        if isinstance(block.get("input"), dict) and block["input"]:
            parts.parsed = block["input"]


def add_event(received: Received, event: dict[str, Any]) -> None:
    """Fold one stream event into ``received``."""
    kind = event.get("type")
    if kind == "message_start":
        _usage(received, (event.get("message") or {}).get("usage"), start=True)
    elif kind == "content_block_start":
        _block_start(received, int(event.get("index", 0)), event.get("content_block") or {})
    elif kind == "content_block_delta":
        delta = event.get("delta") or {}
        if delta.get("type") == "text_delta":
            received.text.append(str(delta.get("text", "")))
        elif delta.get("type") == "input_json_delta":
            received.call(int(event.get("index", 0))).arguments += str(delta.get("partial_json", ""))
    elif kind == "message_delta":
        if (event.get("delta") or {}).get("stop_reason"):
            received.stop_reason = str(event["delta"]["stop_reason"])
        _usage(received, event.get("usage"), start=False)


def read_message(document: dict[str, Any]) -> Received:
    """A whole ``message`` document (the non-streaming reply)."""
    received = Received()
    for index, block in enumerate(document.get("content") or ()):
        if block.get("type") == "tool_use":
            parts = received.call(index)
            parts.id = str(block.get("id") or "")
            parts.name = str(block.get("name") or "")
            parts.parsed = block.get("input") if isinstance(block.get("input"), dict) else {}
        elif block.get("type") == "text":
            received.text.append(str(block.get("text", "")))
    _usage(received, document.get("usage"), start=False)
    received.stop_reason = str(document.get("stop_reason") or "end_turn")
    return received
