"""The provider-neutral shapes and the :class:`Provider` protocol."""

from __future__ import annotations

from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from sessiontree.budget import Usage
from sessiontree.cancellation import CancelToken
from sessiontree.errors import SessionTreeError


class ProviderError(SessionTreeError):
    """A provider call failed (transport, refusal, malformed reply)."""


class ToolSpec(BaseModel):
    """A tool as a model sees it: name, description, JSON Schema of its input."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str
    input_schema: dict[str, Any]


class ToolCall(BaseModel):
    """A tool call the model asked for. ``arguments`` may be a raw string when the model
    produced something that is not a JSON object; the Tool Gate turns that into an
    error result for the model."""

    model_config = ConfigDict(frozen=True)

    id: str = ""
    name: str
    arguments: dict[str, Any] | str = Field(default_factory=dict)


class ModelMessage(BaseModel):
    model_config = ConfigDict(frozen=True)

    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None
    trust: Literal["trusted", "untrusted"] = "trusted"


class ModelRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    session_id: str
    role: str
    model: str
    messages: tuple[ModelMessage, ...]
    tools: tuple[ToolSpec, ...] = ()
    max_output_tokens: int | None = None
    attempt: int = 1


class ModelReply(BaseModel):
    model_config = ConfigDict(frozen=True)

    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage = Usage()
    stop_reason: str = "end_turn"


@runtime_checkable
class Provider(Protocol):
    """Turns a neutral request into a reply. ``complete`` runs on a session actor's
    thread; it should return promptly once ``cancel`` is set (its result is then
    discarded anyway). Raising marks the run as crashed (supervision restarts it) --
    any exception, ``BaseException`` included (``SystemExit``, ``KeyboardInterrupt``,
    ...): it is that session's crash, never the runtime's. Raise ``Cancelled`` only
    once ``cancel`` is set; raised otherwise it is a crash too."""

    name: str
    local: bool

    def complete(self, request: ModelRequest, cancel: CancelToken) -> ModelReply: ...
