"""The provider-neutral shapes and the :class:`Provider` protocol.

What a provider receives, for one model_run of one session (:class:`ModelRequest`):
``messages`` is the session's whole history in order, as stored:

- an optional ``system`` message first (the ``system`` text given at creation/spawn);
- the task as the first ``user`` message (``trust="untrusted"`` for a spawned child:
  its parent's model wrote it);
- then each turn: the ``assistant`` reply (``content`` and its ``tool_calls``, each with
  the id *we* gave it), followed by one ``tool`` message per call in the same order,
  with ``tool_call_id`` naming the call, ``name`` the tool, and ``content`` the result
  as text (JSON for structured results; an error result is JSON with an ``error`` key).
  Tool messages are always ``trust="untrusted"``: they come from outside.

``tools`` are the tools this session may call (the Tool Gate's view), already as JSON
Schemas. ``max_output_tokens`` is what the scheduler reserved for the reply.

What it returns (:class:`ModelReply`): the text, the tool calls (``id`` optional: the
provider's own id, kept as ``provider_id``), ``usage`` (input/output tokens and cost as
the provider reports them; leave ``model_runs`` and ``wall_time`` at 0, the runtime
fills them) and ``stop_reason``. A reply with no tool calls ends the session's task.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from sessiontree._budget import Usage
from sessiontree._cancellation import CancelToken
from sessiontree._errors import SessionTreeError
from sessiontree._reasons import Reason
from sessiontree.providers.trust import model_text


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
    """A tool as a model sees it: name, description, JSON Schema of its input (made
    once from the tool's pydantic model)."""

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
    """One message of a session's history as a provider receives it (see the module
    docstring for the order). ``tool_calls`` only on ``assistant`` messages;
    ``tool_call_id`` and ``name`` only on ``tool`` messages; ``trust`` is ``untrusted``
    for anything that came from outside the session's own instructions, with its
    ``provenance``; :meth:`model_text` is what the model is sent."""

    model_config = ConfigDict(frozen=True)

    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None
    trust: Literal["trusted", "untrusted"] = "trusted"
    is_error: bool = False  # a tool result that reports a failure
    provenance: dict[str, Any] = Field(default_factory=dict)  # where untrusted data came from

    def model_text(self) -> str:
        """What the model must be sent for this message: ``content`` as is when trusted;
        untrusted data inside the labelled block of ``providers.trust`` (what every
        built-in adapter sends; a custom provider should send this, not ``content``)."""
        return model_text(self.content, self.trust, self.provenance)


class ModelRequest(BaseModel):
    """Everything a provider gets for one model call: the session (id, role), the
    model name, the history, the tools it may offer, the output-token reservation and
    the attempt number (> 1 after a restart or a recovery)."""

    model_config = ConfigDict(frozen=True)

    session_id: str
    role: str
    model: str
    messages: tuple[ModelMessage, ...]
    tools: tuple[ToolSpec, ...] = ()
    max_output_tokens: int | None = None
    attempt: int = 1


class ModelReply(BaseModel):
    """What a provider returns: text, tool calls, usage, stop reason. The runtime
    validates it; anything else returned is a :class:`ProviderError`."""

    model_config = ConfigDict(frozen=True)

    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage = Usage()
    stop_reason: str = "end_turn"


@runtime_checkable
class Provider(Protocol):
    """Turns a neutral request into a reply: any object with these three members.

    ``name`` is how sessions name it; ``local`` is True for a provider that keeps data
    on this machine (no consent needed). ``complete(request, cancel)`` runs on a session
    actor's thread, one call per model_run; it may block. It should watch ``cancel``
    (``cancel.cancelled``, ``cancel.wait(t)``, ``cancel.add_callback``) and return or
    raise promptly once it is set: the result is discarded then, but its ``usage`` is
    charged, so return what was received. Raising :class:`ProviderError` hands the
    failure to the scheduler's back-pressure (see ``supervision.provider_failures``);
    raising anything else marks the run as crashed (supervision restarts it from the
    latest checkpoint) -- any exception, ``BaseException`` included (``SystemExit``,
    ``KeyboardInterrupt``, ...): it is that session's crash, never the runtime's. Raise
    ``Cancelled`` only once ``cancel`` is set; raised otherwise it is a crash too.

    Optional, looked up with ``getattr``: ``close()`` (called when a runtime that
    registered the provider closes; a closed provider may be used again) and
    ``price(model) -> Price | None`` (``None``: this model's cost is unknown, so a
    session with a cost budget on it is refused at creation).
    """

    name: str
    local: bool

    def complete(self, request: ModelRequest, cancel: CancelToken) -> ModelReply: ...
