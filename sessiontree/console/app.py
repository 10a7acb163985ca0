"""``sessiontree console``: the interactive steering console (Textual; the ``console``
extra).

It attaches to a store -- live or not, from any terminal -- and redraws what
``console.snapshot`` reads, as ``console.view`` draws it: the tree (parent -> children
in spawn order) with each session's state, what it is doing and its usage against its
budget; a header of totals; a detail pane for the selected session; a footer of the
latest events and commands. Keys write commands to the store's control channel
(``persistence.commands``), which the host applies; destructive ones ask first.

It only reads the store between commands (WAL: it never blocks the host's writer) and
redraws when the store changed (``persistence.steering.change_counter``) or a clock
second passed. Without a terminal, :func:`run_console` prints one snapshot and returns.
"""

from __future__ import annotations

import sys
import time
from typing import Any, ClassVar

from rich.console import Console
from rich.text import Text
from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Static, Tree
from textual.widgets.tree import TreeNode

from sessiontree._errors import SessionTreeError
from sessiontree.console import snapshot, view
from sessiontree.console._common import OK, CommandError, _reader
from sessiontree.persistence import commands, steering
from sessiontree.persistence.engine import open_store
from sessiontree.persistence.store import Store

REFRESH = 0.5
"""Seconds between two looks at the store, at least (a look that finds no change redraws
only the clocks and spinners, once a second)."""

CPU_SHARE = 0.03
"""The most of one CPU the console uses, reading and drawing: when the last interval
cost more, the next look waits longer (0.06 s of CPU puts it 2 s later). A console must
not compete for the CPU with the host it watches (``bench/console_overhead.py``)."""

MAX_WAIT = 3.0
"""Seconds between two looks, at most, however busy: the view is never staler."""


class Confirm(ModalScreen[bool]):
    """Ask before a destructive command: ``y`` goes ahead, ``n`` or escape does not."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "yes"), Binding("n", "answer(False)", "no"),
        Binding("escape", "answer(False)", "no")]
    DEFAULT_CSS = """
    Confirm { align: center middle; }
    Confirm > Static { width: 64; padding: 1 2; border: thick $error; background: $surface; }
    """

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        yield Static(f"{self.question}\n\n[b]y[/b] yes    [b]n[/b] no", id="question")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class SteeringConsole(App[None]):
    """The console on one store (see the module docstring)."""

    TITLE = "sessiontree console"
    CSS = """
    #header { height: auto; max-height: 8; padding: 0 1; background: $boost; }
    #main { height: 1fr; }
    #tree { width: 2fr; }
    #detail-pane { width: 1fr; border-left: solid $primary; padding: 0 1; }
    #events { height: auto; max-height: 10; padding: 0 1; background: $boost; }
    #search { dock: bottom; display: none; }
    #search.shown { display: block; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("p", "control('pause', False)", "pause"),
        Binding("P", "control('pause', True)", "pause subtree"),
        Binding("r", "control('resume', False)", "resume"),
        Binding("R", "control('resume', True)", "resume subtree"),
        Binding("c", "control('cancel', True)", "cancel"),
        Binding("t", "control('retry', False)", "retry"),
        Binding("g", "consent('grant')", "grant consent"),
        Binding("d", "consent('deny')", "deny consent"),
        Binding("e", "toggle_ended", "collapse ended"),
        Binding("f", "toggle_follow", "follow"),
        Binding("slash", "search", "search"),
        Binding("n", "search_next", "next match", show=False),
        Binding("q", "quit", "quit"),
    ]
    DESTRUCTIVE = ("cancel", "retry", "deny")

    def __init__(self, db: str, *, refresh: float = REFRESH) -> None:
        super().__init__()
        self.db = db
        self.refresh_every = refresh
        self.store: Store | None = None
        self.reader: snapshot.Reader | None = None
        self.snap: snapshot.Snapshot | None = None
        self.nodes: dict[str, TreeNode[str]] = {}
        self.collapsed_once: set[str] = set()
        self.collapse_ended = True
        self.follow = True
        self.frame = 0
        self.query_text = ""
        self.last_counter: int | None = None
        self.drawn_at = 0.0
        self.cpu_mark = time.process_time()
        self.notice = ""
        self.header_w = Static(id="header")
        self.tree_w: Tree[str] = Tree("sessions", id="tree")
        self.detail_w = Static(id="detail")
        self.events_w = Static(id="events")
        self.search_w = Input(placeholder="search: id or role, enter to go", id="search")

    # -- layout -------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        # Kept as attributes: the app's own query_one looks at the active screen, which
        # is the confirmation while one is asked.
        yield self.header_w
        with Horizontal(id="main"):
            self.tree_w.show_root = False
            self.tree_w.root.expand()
            yield self.tree_w
            with VerticalScroll(id="detail-pane"):
                yield self.detail_w
        with Vertical(id="bottom"):
            yield self.events_w
            yield self.search_w
        yield Footer()

    def on_mount(self) -> None:
        self.store = open_store(self.db, create=False)
        self.reader = snapshot.Reader(self.store)
        self.look(force=True)
        self.cpu_mark = time.process_time()  # start-up is not a look's cost
        self.set_timer(self.refresh_every, self._tick)

    def _tick(self) -> None:
        cpu = time.process_time()  # this process: the reads, and Textual's drawing since
        spent, self.cpu_mark = cpu - self.cpu_mark, cpu
        self.look()
        self.set_timer(min(MAX_WAIT, max(self.refresh_every, spent / CPU_SHARE)), self._tick)

    def on_unmount(self) -> None:
        if self.store is not None:
            self.store.close()

    # -- reading and drawing ------------------------------------------------------------
    def look(self, force: bool = False) -> None:
        """Read the store if it changed (or on ``force``), then redraw."""
        assert self.store is not None
        self.frame += 1
        counter = steering.change_counter(self.store)
        changed = force or counter != self.last_counter or self.snap is None
        if changed:
            self.last_counter = counter
            assert self.reader is not None
            self.snap = self.reader.read()
        now = time.monotonic()
        if changed or now - self.drawn_at >= 1.0:  # the clocks and spinners, once a second
            self.drawn_at = now
            self.draw()

    def draw(self) -> None:
        snap = self.snap
        if snap is None:
            return
        self.header_w.update(view.header(snap))
        tree = self.tree_w
        for root in snap.roots:
            self._place(tree.root, root, snap)
        self.events_w.update(
            view.footer(snap) + (Text(f"\n{self.notice}", style="bold") if self.notice
                                 else Text("")))
        if tree.cursor_node is None or tree.cursor_node.data is None:
            first = self.nodes.get(snap.roots[0].id) if snap.roots else None
            if first is not None:
                tree.move_cursor(first)
        self._show_detail()

    def _place(self, parent: TreeNode[str], node: snapshot.NodeView, snap: snapshot.Snapshot) -> None:
        collapse = self.collapse_ended and node.info.terminal and bool(node.children)
        label = view.node_label(node, snap.now, self.frame, collapsed=collapse)
        branch = self.nodes.get(node.id)
        if branch is None:
            branch = parent.add(label, data=node.id, expand=True)
            self.nodes[node.id] = branch
        elif branch.label != label:  # unchanged lines are not redrawn
            branch.set_label(label)
        if collapse and node.id not in self.collapsed_once:
            self.collapsed_once.add(node.id)  # once: the operator may open it again
            branch.collapse()
        for child in node.children:
            self._place(branch, child, snap)

    def selected(self) -> snapshot.NodeView | None:
        tree = self.tree_w
        node = tree.cursor_node
        if node is None or node.data is None or self.snap is None:
            return None
        return self.snap.find(node.data)

    def _show_detail(self) -> None:
        node = self.selected()
        pane = self.detail_w
        if node is None or self.store is None:
            pane.update("select a session")
            return
        pane.update(view.detail(self.store, node))

    @on(Tree.NodeHighlighted)
    def _highlighted(self) -> None:
        self._show_detail()

    # -- commands -----------------------------------------------------------------------
    def action_control(self, kind: str, subtree: bool) -> None:
        node = self.selected()
        if node is None:
            return
        what = f"{kind} {node.info.role} {node.id}" + (" and its subtree" if subtree else "")
        if kind in self.DESTRUCTIVE:
            self.push_screen(Confirm(f"{what}?"),
                             lambda yes: self._send(kind, node.id, subtree, {}) if yes else None)
        else:
            self._send(kind, node.id, subtree, {})

    def action_consent(self, decision: str) -> None:
        node = self.selected()
        if node is None:
            return
        args = {"decision": decision, "provider": None}
        if decision in self.DESTRUCTIVE:
            self.push_screen(Confirm(f"deny {node.info.provider} to the tree of {node.id}?"),
                             lambda yes: self._send("consent", node.id, False, args) if yes else None)
        else:
            self._send("consent", node.id, False, args)

    def _send(self, kind: str, target: str, subtree: bool, args: dict[str, Any]) -> None:
        assert self.store is not None
        node = self.snap.find(target) if self.snap is not None else None
        if node is not None and node.info.terminal and not (
                kind == "retry" and node.info.state.value == "failed"):
            self.notice = f"not written: session {target} has ended ({node.info.state.value})"
            self.draw()
            return
        try:
            cmd = commands.write(self.store, kind, target, subtree=subtree, args=args, by="console")
        except SessionTreeError as exc:
            self.notice = f"not written: {exc}"
        else:
            self.notice = f"command {cmd.kind} {target[-8:]} written ({cmd.id})"
        self.look(force=True)

    # -- view toggles and search --------------------------------------------------------
    def action_toggle_ended(self) -> None:
        self.collapse_ended = not self.collapse_ended
        if not self.collapse_ended:
            for sid in self.collapsed_once:
                self.nodes[sid].expand()
            self.collapsed_once.clear()
        self.draw()

    def action_toggle_follow(self) -> None:
        self.follow = not self.follow
        self.notice = f"follow selection {'on' if self.follow else 'off'}"
        node = self.tree_w.cursor_node
        if self.follow and node is not None:
            self.tree_w.scroll_to_node(node)
        self.draw()

    def action_search(self) -> None:
        box = self.search_w
        box.add_class("shown")
        box.focus()

    @on(Input.Submitted, "#search")
    def _searched(self, event: Input.Submitted) -> None:
        self.query_text = event.value.strip().lower()
        event.input.remove_class("shown")
        self.tree_w.focus()
        self.action_search_next()

    def action_search_next(self) -> None:
        if not self.query_text or self.snap is None:
            return
        order = [n.id for n in self.snap.nodes()
                 if self.query_text in n.id.lower() or self.query_text in n.info.role.lower()]
        if not order:
            self.notice = f"no session matches {self.query_text!r}"
            self.draw()
            return
        tree = self.tree_w
        current = tree.cursor_node.data if tree.cursor_node is not None else None
        nxt = order[(order.index(current) + 1) % len(order)] if current in order else order[0]
        target = self.nodes[nxt]
        parent = target.parent
        while parent is not None:  # open what hides it
            parent.expand()
            parent = parent.parent
        tree.move_cursor(target)
        if self.follow:
            tree.scroll_to_node(target)
        self.notice = f"{len(order)} match{'es' if len(order) != 1 else ''} for {self.query_text!r}"
        self.draw()


def run_console(db: str, *, refresh: float = REFRESH) -> int:
    """Run the console on ``db``; without a terminal print one snapshot instead."""
    with _reader(db) as store:  # refuse a missing store before anything is drawn
        if not (sys.stdout.isatty() and sys.stdin.isatty()):
            Console(width=200, soft_wrap=True).print(view.render(snapshot.read(store)))
            return OK
    if refresh <= 0:
        raise CommandError("--refresh must be > 0")
    SteeringConsole(db, refresh=refresh).run()
    return OK
