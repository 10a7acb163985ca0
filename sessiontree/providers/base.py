"""The provider-neutral shapes and the :class:`Provider` protocol."""

from __future__ import annotations

from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from sessiontree.budget import Usage
from sessiontree.cancellation import CancelToken
from sessiontree.errors import SessionTreeError
from sessiontree.reasons import Reason


class ProviderError(SessionTreeError):
    """A provider call failed (transport, refusal, malformed reply).

    ``retryable`` (default True, as for any crash) says whether the same request may
    succeed later (429, overloaded, 5xx, a dropped connection); ``retry_after`` is the
    provider's own hint in seconds (``Retry-After``), if it gave one; ``status`` the
    HTTP status, if any; ``reason`` a :class:`Reason` (``provider_auth``,
    ``provider_rate_limited``, ...).

    The scheduler owns what happens next (``supervision.provider_failures``): a
    retryable error cools the provider down and re-queues the run without counting a
    crash; any other fails the session with ``reason``.
    """

    reason = Reason.PROVIDER_SERVER_ERROR

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = True,
        retry_after: float | None = None,
        status: int | None = None,
        reason: Reason | None = None,
        provider: str | None = None,
    ) -> None:
        super().__init__(message, reason=reason, status=status, provider=provider)
        self.retryable = retryable
        self.retry_after = retry_after
        self.status = status
        self.provider = provider


class ToolSpec(BaseModel):
    """A tool as a model sees it: name, description, JSON Schema of its input."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str
    input_schema: dict[str, Any]
    _rendered: dict[str, dict[str, Any]] = PrivateAttr(default_factory=dict)

    def rendered_cache(self) -> dict[str, dict[str, Any]]:
        """Per-provider renderings of this spec (see ``providers.tool_surface``)."""
        return self._rendered


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
    is_error: bool = False  # a tool result that reports a failure


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
    discarded anyway, but its ``usage`` is charged: return what was received). Raising
    :class:`ProviderError` hands the failure to the scheduler's back-pressure (see
    ``supervision.provider_failures``); raising anything else marks the run as crashed
    (supervision restarts it).

    Optional, looked up with ``getattr``: ``close()`` (called when a runtime that
    registered the provider closes; a closed provider may be used again) and
    ``price(model) -> Price | None`` (``None``: this model's cost is unknown, so a
    session with a cost budget on it is refused at creation).
    """

    name: str
    local: bool

    def complete(self, request: ModelRequest, cancel: CancelToken) -> ModelReply: ...
