"""The tool registry: name, description, input schema (a pydantic model), the
capability a tool needs, and its effect class.

Effect classes decide what recovery may do with a call cut off between its journaled
intent and its result: ``read_only`` and ``idempotent`` calls are run again (an
idempotent tool gets the same ``idempotency_key`` every attempt, so the outside world
sees one effect when it honours the key); a ``side_effecting`` call is never run twice:
it is handed to an operator (reason ``unknown_side_effect``).

What a tool raises:

- :class:`ToolError` -- a failed call: the model gets an error result with its message
  and reason, the run goes on;
- any other ``Exception`` -- also a failed call (``on_error="result"``, the default):
  the model gets ``{"error": "Type: message", "error_type": "Type", "reason":
  "tool_error"}``; a tool declared ``on_error="crash"`` instead crashes its session
  (restarted from the checkpoint, the journal deciding whether the call runs again);
- a ``BaseException`` that is not an ``Exception`` (``SystemExit``, ``KeyboardInterrupt``,
  ...) -- always the session's crash; :class:`~sessiontree.Cancelled` -- cancellation
  when the run was cancelled (a crash otherwise).

The runtime's own faults met inside a tool (a store that cannot commit, a scheduler that
does not answer) are crashes whatever ``on_error`` says.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel

from sessiontree._cancellation import CancelToken
from sessiontree._errors import InvalidInput, SessionTreeError, WorkspaceError
from sessiontree._reasons import Reason
from sessiontree.providers.base import ToolSpec
from sessiontree.providers.tool_surface import check_name, check_schema
from sessiontree.workspace.paths import Root

log = logging.getLogger(__name__)

OnError = Literal["result", "crash"]


class EffectClass(StrEnum):
    """What running a tool does to the world, which decides what recovery may do with
    a call cut off between its intent and its result (see the module docstring)."""

    READ_ONLY = "read_only"
    IDEMPOTENT = "idempotent"
    SIDE_EFFECTING = "side_effecting"


class ToolError(SessionTreeError):
    """Raise from a tool to give the model an error result with this message and
    ``reason`` (default ``tool_error``); the run goes on.

    Any other ``Exception`` from a tool is a failed call too, unless the tool was
    declared ``on_error="crash"``; see the module docstring for the whole rule.
    """

    reason = Reason.TOOL_ERROR


@dataclass
class ToolContext:
    """What a running tool may know about its call."""

    session_id: str
    call_id: str
    idempotency_key: str
    attempt: int
    role: str
    depth: int
    workspace: Path | None
    cancel: CancelToken
    services: Any = None  # runtime services for built-in tools (spawn)

    def workspace_path(self, relative: str) -> Path:
        """Resolve ``relative`` inside the session's workspace, with the path safety of
        the built-in file tools (``sessiontree.workspace.paths``): absolute paths,
        ``..`` that climbs out, symlinks leading outside, ``.git``, NUL bytes and
        over-long paths raise :class:`ToolError`. Returns the real path (inner symlinks
        followed); it need not exist. A tool that then opens it by name could still race
        a symlink swapped in afterwards; the built-in file tools open by descriptor."""
        if self.workspace is None:
            raise ToolError("this session has no workspace")
        if not isinstance(relative, str):
            raise ToolError(f"not a usable path: {relative!r}", reason=Reason.INVALID_ARGS)
        try:
            root = Root(self.workspace)
            with root.resolve(relative) as target:
                return Path(root.path, target.real)
        except WorkspaceError as exc:
            raise ToolError(str(exc), reason=exc.reason, **exc.facts) from None


@dataclass(frozen=True)
class Tool:
    """A tool: ``fn(ctx, args)`` with its schema, capability and effect class.
    ``on_error`` says what an ordinary exception from ``fn`` means: ``"result"`` (the
    default: a failed call the model sees) or ``"crash"`` (the session crashes and is
    restarted; see the module docstring)."""

    name: str
    description: str
    args_model: type[BaseModel]
    fn: Callable[[ToolContext, Any], Any]
    effect: EffectClass = EffectClass.SIDE_EFFECTING
    capability: str | None = None
    builtin: bool = field(default=False, compare=False)
    scope: Callable[[Any], Sequence[str]] | None = field(default=None, compare=False)
    """For a scoped capability (``fs.read``, ``fs.write``): the paths or globs a call
    touches, from its validated arguments; the gate then requires ``<capability>:<each>``
    (an empty list: the family alone, the tool checks paths itself). None: the tool
    needs the capability unscoped."""

    on_error: OnError = "result"

    def __post_init__(self) -> None:
        """Checks what every provider accepts (``providers.tool_surface``): a name that
        matches ``^[a-zA-Z0-9_-]{1,64}$`` and an input schema a provider would not
        reject; raises :class:`~sessiontree.providers.tool_surface.ToolSchemaError`."""
        check_name(self.name)
        if not (isinstance(self.args_model, type) and issubclass(self.args_model, BaseModel)):
            raise InvalidInput(f"tool {self.name}: args_model must be a pydantic model class")
        if not callable(self.fn):
            raise InvalidInput(f"tool {self.name}: fn must be callable")
        if self.on_error not in get_args(OnError):
            raise InvalidInput(f"tool {self.name}: on_error must be 'result' or 'crash', "
                               f"not {self.on_error!r}")
        object.__setattr__(self, "effect", _effect(self.name, self.effect))
        # Built once: pydantic regenerates a JSON Schema on every call.
        schema = self.args_model.model_json_schema()
        check_schema(self.name, schema)
        object.__setattr__(self, "_spec", ToolSpec(
            name=self.name,
            description=self.description,
            input_schema=schema,
        ))

    def spec(self) -> ToolSpec:
        spec: ToolSpec = getattr(self, "_spec")  # noqa: B009 - set in __post_init__
        return spec


def tool(
    name: str,
    args_model: type[BaseModel],
    *,
    effect: EffectClass | str = EffectClass.SIDE_EFFECTING,
    capability: str | None = None,
    description: str | None = None,
    on_error: OnError = "result",
) -> Callable[[Callable[[ToolContext, Any], Any]], Tool]:
    """Decorator: turn ``fn(ctx, args)`` into a :class:`Tool`. Side-effecting unless
    declared otherwise: the safe default for recovery. ``on_error`` as for
    :class:`Tool`. Raises :class:`InvalidInput` for a bad name, effect or on_error."""
    checked = _effect(name, effect)
    if on_error not in get_args(OnError):
        raise InvalidInput(f"tool {name!r}: on_error must be 'result' or 'crash', not {on_error!r}")

    def wrap(fn: Callable[[ToolContext, Any], Any]) -> Tool:
        return Tool(
            name=name,
            description=description or (fn.__doc__ or name).strip(),
            args_model=args_model,
            fn=fn,
            effect=checked,
            capability=capability,
            on_error=on_error,
        )

    return wrap


def _effect(name: str, effect: EffectClass | str) -> EffectClass:
    try:
        return EffectClass(effect)
    except ValueError:
        raise InvalidInput(
            f"tool {name!r}: unknown effect {effect!r}; use one of "
            f"{', '.join(e.value for e in EffectClass)}", tool=name) from None


class ToolRegistry:
    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        self.version = 0  # bumped by every register (what the gate's offers are keyed on)
        for t in tools:
            self.register(t)

    def register(self, t: Tool, *, replace: bool = False) -> None:
        """Register ``t``. A host's tool may take the name of a built-in one (it
        replaces it); any other name registered twice raises :class:`InvalidInput`."""
        if not isinstance(t, Tool):
            raise InvalidInput(f"not a Tool: {t!r}")
        existing = self._tools.get(t.name)
        if existing is not None and not replace:
            if not existing.builtin or t.builtin:
                raise InvalidInput(f"tool {t.name!r} is already registered", tool=t.name)
            log.info("the host's tool %r replaces the built-in one", t.name)
        self._tools[t.name] = t
        self.version += 1

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def names(self) -> list[str]:
        return sorted(self._tools)

    def specs(self, names: Iterable[str] | None = None) -> list[ToolSpec]:
        chosen = self._tools if names is None else {n: self._tools[n] for n in names}
        return [t.spec() for t in chosen.values()]
