"""Drawing a :class:`~sessiontree.console.snapshot.Snapshot` with rich: the node labels,
the header of totals, the footer of latest events, the detail of one session. Shared by
the steering console (``console.app``, inside Textual widgets), its one-shot snapshot
when there is no terminal, and the in-process live view (``console.live.watch``).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from rich.console import Group, RenderableType
from rich.text import Text
from rich.tree import Tree

from sessiontree.console.snapshot import NodeView, Snapshot
from sessiontree.persistence import steering
from sessiontree.persistence.store import Store

STATE_STYLES: dict[str, str] = {
    "created": "dim",
    "queued": "yellow",
    "running": "bold cyan",
    "waiting": "blue",
    "idle": "green",
    "awaiting_consent": "bold magenta",
    "awaiting_operator": "bold red",
    "paused": "dim yellow",
    "completed": "green",
    "failed": "bold red",
    "cancelled": "magenta",
}

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
MAX_CHILDREN_SHOWN = 50
"""Children drawn under one node; a wider fan-out is summarised in one line."""
BAR_WIDTH = 6


def _num(value: float) -> str:
    """``144``, ``61k``, ``1.2M``: short enough for a tree line."""
    if abs(value) >= 1_000_000:
        return f"{value / 1_000_000:.3g}M"
    if abs(value) >= 10_000:
        return f"{value / 1000:.0f}k"
    return f"{value:g}"


def bar(used: float, bound: float | None, width: int = BAR_WIDTH) -> Text:
    """``▇▇▇░░░ 3/6``: a usage bar against its bound (no bound: just the number)."""
    if bound is None or bound <= 0:
        return Text(_num(used), style="dim")
    full = min(width, round(width * used / bound))
    style = "red" if used >= bound else "yellow" if used >= 0.8 * bound else "green"
    text = Text("▇" * full, style=style)
    text.append("░" * (width - full), style="dim")
    text.append(f" {_num(used)}/{_num(bound)}")
    return text


def _age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds // 60:.0f}m{seconds % 60:02.0f}s"
    return f"{seconds // 3600:.0f}h{seconds % 3600 // 60:02.0f}m"


def state_text(node: NodeView, frame: int = 0) -> Text:
    state = node.info.state.value
    shown = "paused*" if node.paused and state != "paused" else state
    text = Text()
    if state == "running":
        text.append(SPINNER[frame % len(SPINNER)] + " ", style="bold cyan")
    text.append(shown, style=STATE_STYLES.get(state, ""))
    return text


def ended_counts(node: NodeView) -> str:
    """``12 sessions: 11 completed, 1 failed`` for a collapsed subtree."""
    counts: dict[str, int] = {}
    for n in node.walk()[1:]:
        counts[n.info.state.value] = counts.get(n.info.state.value, 0) + 1
    total = sum(counts.values())
    return f"{total} below: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))


def node_label(node: NodeView, now: float, frame: int = 0, *, collapsed: bool = False) -> Text:
    """One line per session: role, short id, state (a spinner while running), what it is
    doing now, model runs / tokens / cost against its budget, time in state."""
    s = node.info
    label = Text()
    label.append(s.role, style="bold")
    label.append(f" {s.id[-8:]} ", style="dim")
    label.append_text(state_text(node, frame))
    label.append(f"  {node.doing}", style="italic")
    label.append("  runs ")
    label.append_text(bar(s.spent.model_runs, s.budget.model_runs))
    label.append("  tok ")
    label.append_text(bar(s.spent.tokens, s.budget.tokens))
    if s.budget.cost is not None or s.spent.cost:
        label.append("  $ ")
        label.append_text(bar(round(s.spent.cost, 4), s.budget.cost))
    if node.since is not None:
        label.append(f"  {_age(now - node.since)}", style="dim")
    if collapsed and node.children:
        label.append(f"  [{ended_counts(node)}]", style="dim")
    return label


def header(snap: Snapshot) -> Text:
    """Totals: sessions by state, queue, running against the concurrency limit, spend
    against the root budgets, provider cool-downs, the host."""
    text = Text()
    text.append("sessiontree ", style="bold")
    text.append(f"{Path(snap.path).name}  ", style="dim")
    limit = snap.limits.get("max_concurrent_runs")
    text.append(f"running {snap.running}" + (f"/{limit}" if limit else ""), style="bold cyan")
    text.append(f"  queued {snap.queued}", style="yellow")
    text.append("  sessions ")
    text.append(", ".join(f"{n} {state}" for state, n in sorted(snap.by_state.items())) or "none")
    for root in snap.roots:
        s = root.info
        text.append(f"\n  tree {s.role} {s.id[-8:]}: runs ")
        text.append_text(bar(s.spent.model_runs, s.budget.model_runs))
        text.append("  tokens ")
        text.append_text(bar(s.spent.tokens, s.budget.tokens))
        if s.budget.cost is not None:
            text.append("  cost ")
            text.append_text(bar(round(s.spent.cost, 4), s.budget.cost))
    for provider, until in sorted(snap.cooldowns.items()):
        text.append(f"\n  {provider} cooling down for {_age(until - snap.now)}", style="bold red")
    return text


def _clock(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%H:%M:%S")


def footer(snap: Snapshot) -> Text:
    """The latest events, then the latest operator commands and their outcomes."""
    text = Text()
    for e in snap.events:
        who = e.session_id[-8:] if e.session_id else "-"
        text.append(f"{_clock(e.ts)} {who} ", style="dim")
        text.append(e.type.removeprefix("FR-EVT-SESS-"))
        text.append("\n")
    for c in snap.commands[:3]:
        style = {"pending": "yellow", "applied": "green", "refused": "red"}[c.state]
        text.append(f"{_clock(c.created_at)} command {c.kind} {c.target[-8:]}: ", style="dim")
        text.append(c.state, style=style)
        text.append(f" {c.outcome or ''}\n")
    text.rstrip()
    return text


def detail(store: Store, node: NodeView) -> Text:
    """The selected session: its facts, last messages and last events."""
    s = node.info
    text = Text()
    text.append(f"{s.role} {s.id}\n", style="bold")
    text.append(f"state {s.state.value}" + (f" ({s.reason})" if s.reason else ""))
    text.append(f"{'  paused' if node.paused else ''}\n")
    text.append(f"provider {s.provider}/{s.model}  depth {s.depth}  children {s.spawn_count}\n")
    text.append(f"doing: {node.doing}\n\n")
    text.append("last messages\n", style="bold underline")
    for m in store.messages(s.id)[-4:]:
        body = m.body.get("content") or m.body.get("text") or m.body
        line = str(body).replace("\n", " ")
        text.append(f"{m.role}: ", style="bold")
        text.append(line[:200] + ("…" if len(line) > 200 else "") + "\n")
    text.append("\nlast events\n", style="bold underline")
    for e in steering.latest_events(store, 8, session_id=s.id):
        text.append(f"{_clock(e.ts)} {e.type.removeprefix('FR-EVT-SESS-')}\n", style="dim")
    return text


def render(snap: Snapshot, frame: int = 0) -> RenderableType:
    """The whole view as one rich renderable (the snapshot printed without a terminal,
    and the in-process live view)."""
    parts: list[RenderableType] = [header(snap)]
    if not snap.roots:
        parts.append(Text("(no sessions)", style="dim"))
    for root in snap.roots:
        tree = Tree(node_label(root, snap.now, frame), guide_style="dim")
        _grow(tree, root, snap.now, frame)
        parts.append(tree)
    events = footer(snap)
    if events.plain:
        parts.extend([Text("latest", style="bold underline"), events])
    return Group(*parts)


def _grow(branch: Tree, node: NodeView, now: float, frame: int) -> None:
    for child in node.children[:MAX_CHILDREN_SHOWN]:
        _grow(branch.add(node_label(child, now, frame)), child, now, frame)
    hidden = node.children[MAX_CHILDREN_SHOWN:]
    if hidden:
        states: dict[str, int] = {}
        for child in hidden:
            states[child.info.state.value] = states.get(child.info.state.value, 0) + 1
        counts = ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
        branch.add(Text(f"... {len(hidden)} more children ({counts})", style="dim"))
