"""ScriptedProvider: deterministic and offline, driven by a user-supplied policy.

The default for the demo and the tests. The policy sees the request (as a
:class:`ScriptTurn`) and returns the reply; the same history gives the same reply.
Token usage is estimated from text length (4 characters a token), deterministically.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sessiontree._budget import Usage
from sessiontree._cancellation import Cancelled, CancelToken
from sessiontree._errors import InvalidInput
from sessiontree._jsonsafe import json_problem, literal_text
from sessiontree.providers.base import ModelMessage, ModelReply, ModelRequest, ToolCall


class ScriptTurn:
    """What a policy sees: the request plus conveniences."""

    def __init__(self, request: ModelRequest) -> None:
        self.request = request

    @property
    def session_id(self) -> str:
        return self.request.session_id

    @property
    def role(self) -> str:
        return self.request.role

    @property
    def messages(self) -> tuple[ModelMessage, ...]:
        return self.request.messages

    @property
    def task(self) -> str:
        users = [m.content for m in self.request.messages if m.role == "user"]
        return users[0] if users else ""

    @property
    def turn(self) -> int:
        """0 for the first model turn of the session, then 1, 2, ..."""
        return sum(1 for m in self.request.messages if m.role == "assistant")

    @property
    def tool_results(self) -> list[ModelMessage]:
        """The tool results that answer the previous assistant message."""
        out: list[ModelMessage] = []
        for message in reversed(self.request.messages):
            if message.role != "tool":
                break
            out.append(message)
        return list(reversed(out))

    def result_json(self, index: int = 0) -> Any:
        """The ``index``-th latest tool result parsed as JSON (or its raw text)."""
        content = self.tool_results[index].content
        try:
            return json.loads(content)
        except ValueError:
            return content


Policy = Callable[[ScriptTurn], "ModelReply | str"]


def reply(content: str = "", *tool_calls: ToolCall) -> ModelReply:
    """A :class:`ModelReply` with ``content`` and the given tool calls (for scripts)."""
    return ModelReply(content=content, tool_calls=tuple(tool_calls))


def call(name: str, **arguments: Any) -> ToolCall:
    """A :class:`ToolCall` of tool ``name`` with keyword ``arguments`` (for scripts)."""
    return ToolCall(name=name, arguments=arguments)


def _text_length(arguments: Any) -> int:
    if json_problem(arguments) is None:
        return len(json.dumps(arguments))
    return len(literal_text(arguments))  # any depth, NaN, objects: never a crash here


def _tokens(text: str) -> int:
    return len(text) // 4 + 1


class ScriptedProvider:
    """A provider whose replies come from ``policy``.

    ``latency`` (seconds, or a function of the request) simulates a slow provider; the
    wait ends early when the run is cancelled. ``fault`` is called before each reply and
    may raise, to inject provider failures.
    """

    local = True

    def __init__(
        self,
        policy: Policy,
        *,
        name: str = "scripted",
        latency: float | Callable[[ModelRequest], float] = 0.0,
        cost_per_token: float = 0.0,
    ) -> None:
        if not callable(policy):
            raise InvalidInput("ScriptedProvider needs a callable policy")
        if not isinstance(latency, int | float) and not callable(latency):
            raise InvalidInput("latency must be seconds or a callable")
        if isinstance(latency, int | float) and latency < 0:
            raise InvalidInput("latency must be >= 0")
        self.name = name
        self.policy = policy
        self.latency = latency
        self.cost_per_token = cost_per_token
        self.calls = 0

    def complete(self, request: ModelRequest, cancel: CancelToken) -> ModelReply:
        self.calls += 1
        delay = self.latency(request) if callable(self.latency) else self.latency
        if delay > 0 and cancel.wait(delay):  # simulated latency; returns early on cancel
            raise Cancelled(cancel.reason)
        cancel.raise_if_cancelled()
        produced = self.policy(ScriptTurn(request))
        out = ModelReply(content=produced) if isinstance(produced, str) else produced
        if not isinstance(out, ModelReply):
            raise InvalidInput(f"policy returned {type(produced).__name__}, not a ModelReply")
        if out.usage != Usage():
            return out
        text_in = sum(len(m.content) + 16 for m in request.messages)
        text_out = len(out.content) + sum(
            len(c.name) + _text_length(c.arguments) for c in out.tool_calls
        )
        tokens_in, tokens_out = text_in // 4 + 1, _tokens("x" * text_out)
        usage = Usage(
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            cost=(tokens_in + tokens_out) * self.cost_per_token,
            model_runs=1,
        )
        return out.model_copy(update={"usage": usage})
