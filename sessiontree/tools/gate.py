"""The Tool Gate: the single point that decides whether a tool call may run, and the
only thing that can run one.

Deny by default, for every tool: a tool declared without a capability needs
``tool:<name>``; ``spawn_session`` needs ``session.spawn``; ``wait_for_children`` is
allowed only to a session that has children. :meth:`ToolGate.decide` checks, for every
call, reading the store afresh (so a revocation or an expiry counts at the next
decision):

1. the tool is registered;
2. the session is ``running`` (not paused, cancelled or ended);
3. a live token (not revoked, not expired) covers the capability the tool needs;
4. the arguments validate against the tool's schema;
5. for a scoped tool (``fs.read`` / ``fs.write``), a live token covers
   ``<capability>:<path>`` for every path its arguments name.

An allowed call gets a :class:`Permit` naming the tokens that allowed it; a denied one a
reason (a :class:`Reason`) and a message for the model. A :class:`Permit` can only be
made here, and :meth:`Permit.run` is the one place in the library that calls a tool's
function: no code path runs a tool without the gate (tests/test_gate.py checks the
source for any other call).

Whatever the model sent, a bad call is a denial, never a crash: arguments that are
not JSON (``NaN`` included), nested deeper than ``jsonsafe.MAX_DEPTH``, or that make
the tool's own validators raise.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from sessiontree._clock import Clock
from sessiontree._errors import InvalidInput, SessionTreeError
from sessiontree._jsonsafe import MAX_DEPTH, json_problem
from sessiontree._reasons import Reason
from sessiontree._safe_text import exception_message, exception_text
from sessiontree._states import SessionState
from sessiontree.persistence.capabilities import CapabilityToken, read_tokens
from sessiontree.persistence.records import SessionRecord
from sessiontree.persistence.store import Store
from sessiontree.providers.base import ToolCall, ToolSpec
from sessiontree.tools import scopes, tokens
from sessiontree.tools.registry import Tool, ToolContext, ToolRegistry

WAIT_TOOL = "wait_for_children"
HAS_CHILDREN = "has_children"  # the condition that allows WAIT_TOOL (no token needed)
_KEY = object()  # only this module can make a Permit


def needed_capability(t: Tool) -> str | None:
    """What a tool needs: its declared capability, else ``tool:<name>``; None only for
    the built-in ``wait_for_children`` (allowed to sessions with children)."""
    if t.builtin and t.name == WAIT_TOOL:
        return None
    return t.capability or f"tool:{t.name}"


_OFFERS_KEPT = 1024  # sets of grants whose offered tools the gate keeps at once

class Permit:
    """The one handle that runs an allowed call (made only by :meth:`ToolGate.decide`)."""

    __slots__ = ("args", "capability", "condition", "token_ids", "tool")

    def __init__(self, key: object, tool: Tool, args: BaseModel, capability: str | None,
                 token_ids: tuple[str, ...], condition: str | None = None) -> None:
        if key is not _KEY:
            raise InvalidInput("a Permit is made by the Tool Gate only")
        self.tool = tool
        self.args = args
        self.capability = capability
        self.token_ids = token_ids
        self.condition = condition  # what allowed a built-in that needs no token

    def run(self, ctx: ToolContext) -> Any:
        """Run the tool with the validated arguments."""
        return self.tool.fn(ctx, self.args)


@dataclass(frozen=True)
class GateDecision:
    allowed: bool
    tool: Tool | None
    permit: Permit | None = None
    reason: Reason | None = None
    message: str = ""
    capability: str | None = None  # what the call needed
    token_id: str | None = None  # a denial: the expired/revoked token that would have covered
    expired: CapabilityToken | None = None  # that token, when it expired (not revoked)

    @property
    def args(self) -> BaseModel | None:
        return self.permit.args if self.permit else None


class ToolGate:
    def __init__(self, registry: ToolRegistry, store: Store, clock: Clock) -> None:
        self.registry = registry
        self.store = store
        self.clock = clock
        # (live grants, has children, registry version) -> (offered tools, their specs)
        self._offers: dict[tuple[Any, ...], tuple[tuple[Tool, ...], tuple[ToolSpec, ...]]] = {}

    def tokens(self, session_id: str) -> list[CapabilityToken]:
        """The session's tokens as committed (the store's writer caches them until a
        commit issues or revokes a token: ``persistence.capabilities``)."""
        return read_tokens(self.store, session_ids=[session_id])

    def visible_tools(self, session: SessionRecord) -> list[Tool]:
        """The tools a session may call now: the model is only offered those."""
        return list(self._visible(session)[0])

    def visible_specs(self, session: SessionRecord) -> tuple[ToolSpec, ...]:
        """The specs of :meth:`visible_tools` (what a model request carries)."""
        return self._visible(session)[1]

    def _visible(self, session: SessionRecord) -> tuple[tuple[Tool, ...], tuple[ToolSpec, ...]]:
        """Worked out once per set of live grants (capability and expiry of each live
        token), per registry version and per whether the session has children -- what
        the offer depends on -- so sessions granted alike share it."""
        now = self.clock.now()
        live = [x for x in self.tokens(session.id) if x.live(now)]
        key = (tuple(sorted((x.capability, x.expires_at or math.inf) for x in live)),
               session.spawn_count > 0, self.registry.version)
        hit = self._offers.get(key)
        if hit is not None:
            return hit
        tools = [t for name in self.registry.names() if (t := self.registry.get(name)) is not None]
        offered = tuple(t for t in tools if self._offered(t, session, live, now))
        if len(self._offers) >= _OFFERS_KEPT:
            self._offers.clear()
        found = self._offers[key] = (offered, tuple(t.spec() for t in offered))
        return found

    @staticmethod
    def _offered(t: Tool, session: SessionRecord, held: Sequence[CapabilityToken], now: float) -> bool:
        needed = needed_capability(t)
        if needed is None:
            return session.spawn_count > 0
        if t.scope is not None:
            return tokens.holds_family(held, needed, now)
        return tokens.covering(held, needed, now)[0] is not None

    def decide(self, session_id: str, call: ToolCall) -> GateDecision:
        """Decide one call (module docstring) on the session and its tokens as stored
        now. Never raises for a model's mistake."""
        if self.registry.get(call.name) is None:
            return judge(self.registry, None, (), 0.0, call)
        return judge(self.registry, self.store.session(session_id), self.tokens(session_id),
                     self.clock.now(), call)


def judge(
    registry: ToolRegistry, session: SessionRecord | None, held: Sequence[CapabilityToken],
    now: float, call: ToolCall,
) -> GateDecision:
    """The gate's decision as a pure function of the registry, the session (None only
    for an unknown tool), its tokens, the time and the call."""
    t = registry.get(call.name)
    if t is None or session is None:
        return GateDecision(False, None, reason=Reason.UNKNOWN_TOOL,
                            message=f"unknown tool {call.name!r}")
    if session.state != SessionState.RUNNING.value:
        return GateDecision(False, t, reason=Reason.SESSION_NOT_RUNNING,
                            message=f"session is {session.state}, not running")
    return _Judge(t, held, now).run(session, call)


class _Judge:
    def __init__(self, t: Tool, held: Sequence[CapabilityToken], now: float) -> None:
        self.t, self.held, self.now = t, held, now

    def run(self, session: SessionRecord, call: ToolCall) -> GateDecision:
        t, held, now = self.t, self.held, self.now
        needed = needed_capability(t)
        used: list[str] = []
        if needed is None:
            if session.spawn_count == 0:
                return GateDecision(False, t, reason=Reason.NO_CHILDREN,
                                    message=f"{t.name} needs a child to wait for; this session has none")
        elif t.scope is None:
            denied = self._cover(needed, used)
            if denied is not None:
                return denied
        elif not tokens.holds_family(held, needed, now):
            return self._deny(needed)
        args = _args(t, call)
        if not isinstance(args, BaseModel):
            return args
        if t.scope is not None and needed is not None:
            try:
                touched = list(t.scope(args))
            except SessionTreeError as exc:  # e.g. a path refused by workspace path safety
                return GateDecision(False, t, reason=exc.reason or Reason.INVALID_ARGS,
                                    message=exception_message(exc), capability=needed)
            if not touched:  # the tool checks its paths itself: any token of the family
                used.extend(x.id for x in held if x.live(now)
                            and scopes.split(x.capability)[0] == needed)
            for path in touched:
                denied = self._cover(scopes.scoped(needed, path), used)
                if denied is not None:
                    return denied
        token_ids = tuple(dict.fromkeys(used))
        condition = HAS_CHILDREN if needed is None else None
        return GateDecision(True, t, Permit(_KEY, t, args, needed, token_ids, condition),
                            capability=needed)

    def _cover(self, needed: str, used: list[str]) -> GateDecision | None:
        live, _ = tokens.covering(self.held, needed, self.now)
        if live is None:
            return self._deny(needed)
        used.append(live.id)
        return None

    def _deny(self, needed: str) -> GateDecision:
        t = self.t
        _, dead = tokens.covering(self.held, needed, self.now)
        if dead is not None and dead.revoked:
            reason, why = Reason.CAPABILITY_REVOKED, f"its token {dead.id} was revoked"
        elif dead is not None:
            reason, why = Reason.CAPABILITY_EXPIRED, f"its token {dead.id} expired"
        else:
            reason, why = Reason.CAPABILITY_DENIED, "which this session does not hold"
        return GateDecision(False, t, reason=reason, capability=needed,
                            token_id=dead.id if dead else None,
                            expired=dead if reason is Reason.CAPABILITY_EXPIRED else None,
                            message=f"tool {t.name!r} needs capability {needed!r}, {why}")


def _args(t: Tool, call: ToolCall) -> BaseModel | GateDecision:
    """The call's arguments validated against the tool's model, or the denial that says
    why not -- whatever the model sent: not JSON (``NaN`` included), nested deeper than
    ``jsonsafe.MAX_DEPTH``, or making the tool's own validators raise."""
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
        return t.args_model.model_validate(raw)
    except ValidationError as exc:
        detail = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors()
        )
        return _invalid(t, f"invalid arguments: {detail}")
    except Exception as exc:  # a validator of the tool's model raised something else
        return _invalid(t, f"invalid arguments: {exception_text(exc)}")


def _invalid(t: Tool, message: str) -> GateDecision:
    return GateDecision(False, t, reason=Reason.INVALID_ARGS, message=message)


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON value")
