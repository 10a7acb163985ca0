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

from sessiontree._budget import Budget, Usage
from sessiontree._states import TERMINAL_VALUES, SessionState
from sessiontree.persistence import commands, steering
from sessiontree.persistence.commands import Command
from sessiontree.persistence.records import SessionRecord
from sessiontree.persistence.steering import EventLine
from sessiontree.persistence.store import Store


@dataclass
class NodeView:
    """A session as a steering view shows it."""

    info: SessionLine
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


@dataclass(frozen=True)
class SessionLine:
    """What a steering view shows of a session, from its row alone (no token or summary
    reads, no validation: a redraw reads one row a changed session)."""

    id: str
    parent_id: str | None
    root_id: str
    depth: int
    role: str
    state: SessionState
    reason: str | None
    provider: str
    model: str
    budget: Budget
    spent: Usage
    spawn_count: int
    created_at: float
    ended_at: float | None

    @property
    def terminal(self) -> bool:
        return self.state.terminal


def _info(r: SessionRecord) -> SessionLine:
    return SessionLine(r.id, r.parent_id, r.root_id, r.depth, r.role, SessionState(r.state),
                       r.state_reason, r.provider, r.model, r.budget,
                       r.usage + r.children_spent + r.carved, r.spawn_count, r.created_at,
                       r.ended_at)


def _doing(s: SessionLine, live_kids: int, paused: bool, tool: str | None) -> str:
    state = s.state.value
    if state == "running":
        now = "waiting for the model" if tool is None else f"running tool {tool}"
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


class Reader:
    """Looks at one store again and again, reading only the sessions whose row changed
    since the last look (and every one each :data:`FULL_EVERY` looks, in case a clock
    went back), so a redraw costs what moved, not the size of the tree."""

    FULL_EVERY = 20

    def __init__(self, store: Store) -> None:
        self.store = store
        self.records: dict[str, SessionRecord] = {}
        self.infos: dict[str, SessionLine] = {}
        self.mark: float | None = None
        self.looks = 0
        self.since: dict[str, float] = {}  # live session id -> when it entered its state
        self.event_mark = 0  # the last event looked at for cool-downs
        self.cooling: dict[str, float] = {}

    def _refresh(self) -> None:
        full = self.looks % self.FULL_EVERY == 0
        self.looks += 1
        changed = steering.sessions_changed(self.store, None if full else self.mark)
        for record, updated_at in changed:
            if self.records.get(record.id) != record:
                self.records[record.id] = record
                self.infos[record.id] = _info(record)
            self.mark = updated_at if self.mark is None else max(self.mark, updated_at)

    def _events(self) -> None:
        """Times in state and cool-downs: from the events written since the last look
        (the first look asks the event index for the live sessions once)."""
        first = self.event_mark == 0
        found, self.event_mark = steering.events_after(
            self.store, self.event_mark, (*steering.STATE_TYPES, steering.COOLDOWN))
        for e in found:
            if e.type == steering.COOLDOWN:
                p = e.payload
                self.cooling[p["provider"]] = max(self.cooling.get(p["provider"], 0.0), p["until"])
            elif e.session_id is not None:
                self.since[e.session_id] = e.ts
        if first:
            live = [r.id for r in self.records.values() if r.state not in TERMINAL_VALUES]
            self.since.update(steering.states_since(self.store, live))
        now = self.store.clock.now()
        self.cooling = {p: u for p, u in self.cooling.items() if u > now}

    def _since(self, s: SessionLine) -> float | None:
        return s.ended_at if s.terminal else self.since.get(s.id)

    def read(self, *, events: int = 6, running: int | None = None,
             queued: int | None = None) -> Snapshot:
        """One look (``running``/``queued``: the scheduler's, when in process)."""
        self._refresh()
        self._events()
        paused = commands.paused_ids(self.store)
        tools = steering.open_calls(self.store, [r.id for r in self.records.values()
                                                 if r.state == "running"])

        kids: dict[str | None, list[SessionRecord]] = {}
        for r in self.records.values():
            parent = r.parent_id if r.parent_id in self.records else None
            kids.setdefault(parent, []).append(r)

        def view(r: SessionRecord) -> NodeView:
            children = [view(c) for c in sorted(kids.get(r.id, []), key=lambda c: c.spawn_index)]
            s = self.infos[r.id]
            live = sum(1 for c in children if not c.info.terminal)
            is_paused = s.id in paused and not s.terminal
            return NodeView(s, _doing(s, live, is_paused, tools.get(s.id)), is_paused,
                            self._since(s), children)

        roots = [view(r) for r in sorted(kids.get(None, []), key=lambda r: (r.created_at, r.id))]
        by_state: Counter[str] = Counter(r.state for r in self.records.values())
        counts = steering.job_counts(self.store)
        return Snapshot(
            self.store.path, roots, by_state,
            counts.get("running", 0) if running is None else running,
            counts.get("queued", 0) if queued is None else queued,
            steering.host_limits(self.store), dict(self.cooling),
            steering.latest_events(self.store, events), commands.recent(self.store, 5), time.time())


def read(store: Store, *, events: int = 6, running: int | None = None,
         queued: int | None = None) -> Snapshot:
    """Look at the store once (``running``/``queued``: the scheduler's, when in process)."""
    return Reader(store).read(events=events, running=running, queued=queued)
