"""One look at a store for the steering views: the tree with what each session is doing
now, totals, the latest events and commands. Read by the console (``console.app``) in
another process and by the in-process live view (``console.live.watch``); drawn by
``console.view``. Reads only (``persistence.steering``), so it never blocks the host.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sessiontree._states import JobState, ToolCallState
from sessiontree._views import SessionInfo, SessionNode, build_forest
from sessiontree.persistence import commands, steering
from sessiontree.persistence.commands import Command
from sessiontree.persistence.steering import EventLine
from sessiontree.persistence.store import Store


@dataclass
class NodeView:
    """A session as a steering view shows it."""

    info: SessionInfo
    doing: str
    paused: bool
    since: float | None
    children: list[NodeView] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.info.id

    def walk(self) -> list[NodeView]:
        out, stack = [], [self]
        while stack:
            node = stack.pop()
            out.append(node)
            stack.extend(reversed(node.children))
        return out


@dataclass
class Snapshot:
    """Everything one redraw shows (``now`` is wall-clock time of the look)."""

    path: str
    roots: list[NodeView]
    by_state: Counter[str]
    running: int
    queued: int
    limits: dict[str, Any]
    cooldowns: dict[str, float]
    events: list[EventLine]
    commands: list[Command]
    now: float

    def nodes(self) -> list[NodeView]:
        return [n for root in self.roots for n in root.walk()]

    def find(self, session_id: str) -> NodeView | None:
        return next((n for n in self.nodes() if n.id == session_id), None)


def _doing(store: Store, s: SessionInfo, node: SessionNode, paused: bool) -> str:
    state = s.state.value
    live_kids = sum(1 for c in node.children if not c.session.terminal)
    if state == "running":
        calls = store.tool_calls(s.id, states=[ToolCallState.INTENT, ToolCallState.WAITING])
        now = "waiting for the model" if not calls else f"running tool {calls[-1].tool}"
        return now + (" (pausing after this step)" if paused else "")
    if state == "waiting":
        return f"waiting for {live_kids} child{'ren' if live_kids != 1 else ''}" + (
            " (paused)" if paused else "")
    if state == "awaiting_operator":
        return "awaiting operator (sessiontree resolve)"
    if state == "awaiting_consent":
        return f"awaiting consent for {s.provider}"
    if state == "paused":
        return "paused by an operator"
    if state == "queued":
        return "queued" + (" (paused)" if paused else "")
    if state == "idle":
        return "idle: waiting for a message"
    if s.terminal:
        return s.reason or state
    return state


def _view(store: Store, node: SessionNode, paused: set[str]) -> NodeView:
    s = node.session
    is_paused = s.id in paused and not s.terminal
    since = s.ended_at if s.terminal else steering.state_since(store, s.id)
    return NodeView(s, _doing(store, s, node, is_paused), is_paused, since,
                    [_view(store, c, paused) for c in node.children])


def read(store: Store, *, events: int = 6, running: int | None = None,
         queued: int | None = None) -> Snapshot:
    """Look at the store once (``running``/``queued``: the scheduler's, when in process)."""
    paused = commands.paused_ids(store)
    roots = [_view(store, n, paused)
             for n in build_forest(store, store.sessions(), with_summary=False)]
    by_state: Counter[str] = Counter(n.info.state.value for r in roots for n in r.walk())
    if running is None:
        running = len(store.jobs(states=[JobState.RUNNING]))
    if queued is None:
        queued = len(store.jobs(states=[JobState.QUEUED]))
    return Snapshot(store.path, roots, by_state, running, queued, steering.host_limits(store),
                    steering.cooldowns(store, store.clock.now()),
                    steering.latest_events(store, events), commands.recent(store, 5), time.time())
