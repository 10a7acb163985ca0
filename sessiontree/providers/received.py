"""What an adapter has received of a reply so far, and how it becomes a ModelReply.

Both wire formats fill one :class:`Received`: text, tool calls (raw argument strings
until the reply is complete), the provider's own token counts when it sent them, and
its stop reason. A stream cut off by a cancel still yields a reply for what arrived,
so its usage is charged: tokens the provider had not yet counted are estimated at 4
characters a token (the same rule as ``ScriptedProvider``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sessiontree._budget import Usage
from sessiontree.providers.base import ModelReply, ModelRequest, ToolCall
from sessiontree.providers.pricing import Price, priced_usage


@dataclass
class CallParts:
    """One tool call as it arrives: id and name, arguments as raw JSON text."""

    id: str = ""
    name: str = ""
    arguments: str = ""
    parsed: dict[str, Any] | None = None  # when the wire gave an object, not text


@dataclass
class Received:
    text: list[str] = field(default_factory=list)
    calls: dict[int, CallParts] = field(default_factory=dict)
    input_tokens: int | None = None
    output_tokens: int | None = None
    stop_reason: str | None = None
    cancelled: bool = False

    def call(self, index: int) -> CallParts:
        return self.calls.setdefault(index, CallParts())

    @property
    def content(self) -> str:
        return "".join(self.text)

    def tool_calls(self) -> tuple[ToolCall, ...]:
        """The calls in wire order. Arguments that are not a JSON object stay a raw
        string: the Tool Gate answers them with an error result the model sees."""
        out = []
        for _, parts in sorted(self.calls.items()):
            args: dict[str, Any] | str
            if parts.parsed is not None and not parts.arguments:
                args = parts.parsed
            elif not parts.arguments.strip():
                args = {}
            else:
                try:
                    loaded = json.loads(parts.arguments)
                except ValueError:
                    loaded = None
                args = loaded if isinstance(loaded, dict) else parts.arguments
            out.append(ToolCall(id=parts.id, name=parts.name, arguments=args))
        return tuple(out)

    def usage(self, request: ModelRequest, price: Price | None) -> Usage:
        tokens_in = self.input_tokens
        if tokens_in is None:
            tokens_in = sum(len(m.content) + 16 for m in request.messages) // 4 + 1
        tokens_out = self.output_tokens
        if tokens_out is None:
            produced = len(self.content) + sum(len(c.name) + len(c.arguments)
                                               for c in self.calls.values())
            tokens_out = produced // 4 + (1 if produced else 0)
        return priced_usage(price, tokens_in, tokens_out)

    def reply(self, request: ModelRequest, price: Price | None) -> ModelReply:
        """The neutral reply; ``price`` None records the run's cost as unknown."""
        stop = "cancelled" if self.cancelled else (self.stop_reason or "end_turn")
        return ModelReply(content=self.content, tool_calls=self.tool_calls(),
                          usage=self.usage(request, price), stop_reason=stop)
