"""The Tool Gate: the single point that decides whether a tool call may run.

Deny by default: a call runs only if the tool is registered, the session's capabilities
cover the capability the tool needs, and the arguments validate against its schema. A
denial is an error result for the model, never a crash -- whatever the model sent:
arguments that are not JSON (``NaN`` included), nested deeper than
``jsonsafe.MAX_DEPTH``, or that make the tool's own validators raise.

Capabilities are compared by ``tools.scopes.covers``: exactly, except the scoped
families ``fs.read:<glob>`` / ``fs.write:<glob>``. A tool with a ``scope`` is offered
to a session holding any capability of its family; each call then needs
``<capability>:<path>`` for every path its arguments name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from sessiontree._errors import SessionTreeError
from sessiontree._jsonsafe import MAX_DEPTH, json_problem
from sessiontree._reasons import Reason
from sessiontree._safe_text import exception_message, exception_text
from sessiontree.persistence.records import SessionRecord
from sessiontree.providers.base import ToolCall
from sessiontree.tools import scopes
from sessiontree.tools.registry import Tool, ToolRegistry


@dataclass(frozen=True)
class GateDecision:
    allowed: bool
    tool: Tool | None
    args: BaseModel | None
    reason: Reason | None = None
    message: str = ""


class ToolGate:
    def __init__(self, registry: ToolRegistry) -> None:
        self.registry = registry

    def visible_tools(self, session: SessionRecord) -> list[Tool]:
        """The tools a session may call (so the model is only offered those)."""
        out = []
        for name in self.registry.names():
            t = self.registry.get(name)
            if t is not None and self._offered(t, session.capabilities):
                out.append(t)
        return out

    @staticmethod
    def _offered(t: Tool, held: tuple[str, ...]) -> bool:
        if t.capability is None:
            return True
        if t.scope is not None:
            return scopes.holds_family(held, t.capability)
        return scopes.covered(held, t.capability)

    def decide(self, session: SessionRecord, call: ToolCall) -> GateDecision:
        t = self.registry.get(call.name)
        if t is None:
            return GateDecision(False, None, None, Reason.UNKNOWN_TOOL, f"unknown tool {call.name!r}")
        if not self._offered(t, session.capabilities):
            return GateDecision(
                False, t, None, Reason.CAPABILITY_DENIED,
                f"tool {t.name!r} needs capability {t.capability!r}, which this session lacks",
            )
        raw: Any = call.arguments
        if isinstance(raw, str):
            try:
                raw = json.loads(raw, parse_constant=_not_json) if raw.strip() else {}
            except RecursionError:
                return _invalid(t, f"arguments are nested deeper than {MAX_DEPTH} levels")
            except ValueError as exc:
                return _invalid(t, f"arguments are not valid JSON: {exception_message(exc, 200)}")
        if not isinstance(raw, dict):
            return _invalid(t, "arguments must be an object")
        problem = json_problem(raw)
        if problem is not None:
            return _invalid(t, f"arguments {problem}")
        try:
            args = t.args_model.model_validate(raw)
        except ValidationError as exc:
            detail = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors()
            )
            return _invalid(t, f"invalid arguments: {detail}")
        except Exception as exc:  # a validator of the tool's model raised something else
            return _invalid(t, f"invalid arguments: {exception_text(exc)}")
        if t.scope is not None and t.capability is not None:
            try:
                touched = list(t.scope(args))
            except SessionTreeError as exc:  # e.g. a path refused by workspace path safety
                return GateDecision(False, t, None, exc.reason or Reason.INVALID_ARGS,
                                    exception_message(exc))
            for path in touched:
                needed = scopes.scoped(t.capability, path)
                if not scopes.covered(session.capabilities, needed):
                    return GateDecision(
                        False, t, None, Reason.CAPABILITY_DENIED,
                        f"tool {t.name!r} needs capability {needed!r}, which this session lacks",
                    )
        return GateDecision(True, t, args)


def _invalid(t: Tool, message: str) -> GateDecision:
    return GateDecision(False, t, None, Reason.INVALID_ARGS, message)


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON value")
