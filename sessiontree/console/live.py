"""The live tree: a rich view of a store's sessions, redrawn while they run.

Everything here reads the store, so the same view works inside the host process
(:func:`watch`, drawn as the steering console draws: ``console.view``) and from another
process (the ``sessiontree tree`` command, and ``sessiontree console``).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.text import Text
from rich.tree import Tree

from sessiontree._budget import Usage
from sessiontree._errors import SessionTreeError
from sessiontree._states import TERMINAL_VALUES, JobState
from sessiontree._views import SessionInfo, SessionNode, build_forest
from sessiontree.console import snapshot, view
from sessiontree.console.view import STATE_STYLES
from sessiontree.persistence.store import Store

if TYPE_CHECKING:
    from sessiontree._runtime import Runtime

MAX_CHILDREN_SHOWN = 50
"""Children drawn under one node; a wider fan-out is summarised in one line, so a tree
of thousands of sessions still redraws in a few milliseconds."""

REFRESH_INTERVAL = 0.1
"""Seconds between redraws of :func:`watch`: smooth to the eye, cheap for the store."""


def _bound(value: int | float | None) -> str:
    return "∞" if value is None else f"{value:g}"


def session_label(s: SessionInfo) -> Text:
    """One line per session: role, short id, state, depth, spend against budget."""
    label = Text()
    label.append(s.role, style="bold")
    label.append(f" {s.id[-8:]} ", style="dim")
    label.append(s.state, style=STATE_STYLES.get(s.state, ""))
    if s.reason and s.state not in ("queued", "running", "waiting", "completed"):
        label.append(f" ({s.reason})", style=STATE_STYLES.get(s.state, ""))
    label.append(f"  depth {s.depth}", style="dim")
    # own + what ended children's subtrees spent + what live children hold, of budget
    kids = s.spent + _negate(s.carved) + _negate(s.usage)
    for name, own, ended, held, bound in (
        ("runs", s.usage.model_runs, kids.model_runs, s.carved.model_runs, s.budget.model_runs),
        ("tokens", s.usage.tokens, kids.tokens, s.carved.tokens, s.budget.tokens),
    ):
        label.append(f"  {name} {own} own")
        if ended:
            label.append(f" + {ended} by children")
        if held:
            label.append(f" + {held} held by children")
        label.append(f" of {_bound(bound)}")
    if s.budget.cost is not None or s.spent.cost:
        label.append(f"  cost {s.spent.cost:.4g} of {_bound(s.budget.cost)}")
    return label


def _negate(u: Usage) -> Usage:
    return Usage.model_construct(input_tokens=-u.input_tokens, output_tokens=-u.output_tokens,
                                 cost=-u.cost, model_runs=-u.model_runs, wall_time=-u.wall_time)


def _grow(branch: Tree, node: SessionNode) -> None:
    for child in node.children[:MAX_CHILDREN_SHOWN]:
        _grow(branch.add(session_label(child.session)), child)
    hidden = node.children[MAX_CHILDREN_SHOWN:]
    if hidden:
        states: dict[str, int] = {}
        for child in hidden:
            states[child.session.state] = states.get(child.session.state, 0) + 1
        counts = ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
        branch.add(Text(f"... {len(hidden)} more children ({counts})", style="dim"))


def forest(
    store: Store, root_id: str | None = None, *, with_summary: bool = False
) -> list[SessionNode]:
    """The session forest of the store, or the tree of one root (summaries are read
    only if asked: a live view redraws often and does not show them)."""
    if root_id is None:
        return build_forest(store, store.sessions(), with_summary=with_summary)
    root = store.session(root_id)
    return build_forest(store, store.sessions(root_id=root.root_id), with_summary=with_summary)


def header(store: Store, running: int | None = None, queued: int | None = None) -> Text:
    """Job counts (from the scheduler when given, else from the store) and session counts."""
    if running is None:
        running = len(store.jobs(states=[JobState.RUNNING]))
    if queued is None:
        queued = len(store.jobs(states=[JobState.QUEUED]))
    total = store.count_sessions()
    done = store.count_sessions(TERMINAL_VALUES)
    text = Text()
    text.append("sessiontree ", style="bold")
    text.append(f"{Path(store.path).name}  ", style="dim")
    text.append(f"running {running}", style="bold cyan")
    text.append("  ")
    text.append(f"queued {queued}", style="yellow")
    text.append(f"  sessions {done}/{total} ended")
    return text


def render_tree(
    store: Store, root_id: str | None = None, *, running: int | None = None,
    queued: int | None = None,
) -> RenderableType:
    """A header line and one rich Tree per root session (or the tree of ``root_id``)."""
    parts: list[RenderableType] = [header(store, running, queued)]
    roots = forest(store, root_id)
    if not roots:
        parts.append(Text("(no sessions)", style="dim"))
    for node in roots:
        tree = Tree(session_label(node.session), guide_style="dim")
        _grow(tree, node)
        parts.append(tree)
    return Group(*parts)


def _frame(rt: Runtime, root_id: str | None, frame: int = 0) -> RenderableType:
    """The steering console's drawing (``console.view``), of the scheduler's counts."""
    try:
        stats = rt.stats()
        snap = snapshot.read(rt._store, running=stats.running, queued=stats.queued)
    except SessionTreeError:  # runtime closing: fall back to the store's counts
        snap = snapshot.read(rt._store)
    if root_id is not None:
        snap.roots = [r for r in snap.roots if r.id == rt._store.session(root_id).root_id]
    return view.render(snap, frame)


def _finished(rt: Runtime, root_id: str | None) -> bool:
    if root_id is not None:
        return rt.session(root_id).terminal
    store = rt._store
    return bool(store.count_sessions(TERMINAL_VALUES) == store.count_sessions())


def watch(
    rt: Runtime,
    root_id: str | None = None,
    *,
    until_done: bool = True,
    interval: float = REFRESH_INTERVAL,
    console: Console | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Redraw the tree of ``root_id`` (default: every session) until it has ended
    (``until_done``) or ``stop`` is set; then print the final tree once.

    On a terminal the view redraws in place; on anything else (a pipe, a log file)
    nothing is drawn until the final tree. Never sleeps: waits on ``stop`` between
    redraws, so setting it ends the watch at once.
    """
    console = console or Console()
    stop = stop or threading.Event()
    frame = 0
    with Live(_frame(rt, root_id), console=console, transient=True, auto_refresh=False) as live:
        while not (until_done and _finished(rt, root_id)):
            if stop.wait(interval):
                break
            frame += 1
            live.update(_frame(rt, root_id, frame), refresh=True)
    console.print(_frame(rt, root_id))
