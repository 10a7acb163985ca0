"""The steering console (``console.app``): through Textual's headless harness
(``App.run_test`` and its ``Pilot``) against a runtime in this process, without a
terminal (one snapshot), and for real in a pseudo-terminal (tmux) against a host in
another process. Keys write commands to the store; the host applies them; the screen
shows the new state. Every wait is on a condition polled with a deadline."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import select
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from test_control import WAIT, Host
from test_pause import Gates
from textual.pilot import Pilot

import sessiontree as st
from sessiontree.console.app import Confirm, SteeringConsole
from sessiontree.console.cli import main
from sessiontree.persistence import commands


def tree_policy(gates: Gates) -> st.ScriptedProvider:
    def policy(turn: st.ScriptTurn) -> Any:
        if turn.role == "root":
            if turn.turn == 0:
                return st.reply("", *[st.call("spawn_session", role="kid", task=f"gated {i}")
                                      for i in range(2)])
            if turn.turn == 1:
                return st.reply("", st.call("wait_for_children"))
            return "root done"
        if turn.turn == 0:
            gates.wait(turn.task)
            return st.reply("", st.call("spawn_session", role="x", task="y"))  # denied
        return "kid done"

    return st.ScriptedProvider(policy)


async def until(pilot: Pilot[None], check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.02)


def label(app: SteeringConsole, sid: str) -> str:
    return str(app.nodes[sid].label.plain) if sid in app.nodes else ""


def live_tree(rt: st.Runtime, gates: Gates) -> tuple[str, list[str]]:
    root = rt.create_session("r", capabilities=["session.spawn"])
    rt.wait_state(root, "waiting", timeout=WAIT)
    assert gates.entered("gated 0") and gates.entered("gated 1")
    return root, [c.id for c in rt.children(root)]


Steps = Callable[[st.Runtime, SteeringConsole, Pilot[None], Gates, str, list[str]],
                 Awaitable[None]]


def drive(db_path: Path, steps: Steps) -> None:
    """Run ``steps`` against a console attached to a live gated tree, once it is drawn;
    the gates are released after, whatever happened."""
    gates = Gates()
    with st.Runtime.open(db_path, providers=[tree_policy(gates)]) as rt:
        root, kids = live_tree(rt, gates)

        async def scenario() -> None:
            app = SteeringConsole(str(db_path), refresh=0.05)
            async with app.run_test(size=(180, 40)) as pilot:
                await until(pilot, lambda: kids[1] in app.nodes, "the tree drawn")
                await steps(rt, app, pilot, gates, root, kids)

        try:
            asyncio.run(scenario())
        finally:
            gates.release("gated 0")
            gates.release("gated 1")


def test_keys_pause_and_resume_the_selected_session_and_the_screen_follows(db_path: Path) -> None:
    async def steps(rt: st.Runtime, app: SteeringConsole, pilot: Pilot[None], gates: Gates,
                    root: str, kids: list[str]) -> None:
        k0 = kids[0]
        assert app.tree_w.cursor_node is app.nodes[root]
        await pilot.press("down")
        assert app.tree_w.cursor_node is app.nodes[k0]
        await pilot.press("p")
        (cmd,) = commands.recent(rt._store)
        assert (cmd.kind, cmd.target, cmd.by) == ("pause", k0, "console")
        await until(pilot, lambda: "paused*" in label(app, k0), "k0 marked paused")
        gates.release("gated 0")
        await until(pilot, lambda: " paused " in label(app, k0), "k0 paused")
        assert rt.session(k0).state == "paused"
        await pilot.press("r")
        gates.release("gated 1")
        await until(pilot, lambda: " completed " in label(app, root), "the root completed")
        assert "kid done" in str(app.detail_w.render())  # k0's detail

    drive(db_path, steps)


def test_cancel_asks_first_and_a_no_writes_nothing(db_path: Path) -> None:
    async def steps(rt: st.Runtime, app: SteeringConsole, pilot: Pilot[None], gates: Gates,
                    root: str, kids: list[str]) -> None:
        await pilot.press("c")
        assert isinstance(app.screen, Confirm)
        await pilot.press("n")
        assert not isinstance(app.screen, Confirm) and commands.recent(rt._store) == []
        await pilot.press("c", "y")
        (cmd,) = commands.recent(rt._store)
        assert (cmd.kind, cmd.target, cmd.subtree) == ("cancel", root, True)
        await until(pilot, lambda: all(" cancelled " in label(app, s)
                                       for s in (root, *kids)), "the tree cancelled")
        await pilot.press("p")  # an ended session: refused here, nothing written
        assert len(commands.recent(rt._store)) == 1
        assert "has ended (cancelled)" in str(app.events_w.render())

    drive(db_path, steps)


def test_search_moves_the_selection_to_a_session_by_id(db_path: Path) -> None:
    async def steps(rt: st.Runtime, app: SteeringConsole, pilot: Pilot[None], gates: Gates,
                    root: str, kids: list[str]) -> None:
        await pilot.press("slash", *kids[1][-6:], "enter")
        assert app.tree_w.cursor_node is app.nodes[kids[1]]

    drive(db_path, steps)


def test_without_a_terminal_the_console_prints_one_snapshot(db_path: Path) -> None:
    with st.Runtime.open(db_path, providers=[st.ScriptedProvider(lambda t: "ok")]) as rt:
        sid = rt.create_session("x", role="writer")
        rt.wait(sid, timeout=WAIT)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["console", "--db", str(db_path)]) == 0
    text = out.getvalue()
    assert "sessiontree store.db" in text and f"writer {sid[-8:]} completed" in text
    assert "runs ░░░░░░ 1/1000" in text and "sessions 1 completed" in text


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
def test_the_real_console_in_a_terminal_steers_a_host_in_another_process(
    db_path: Path, tmp_path: Path,
) -> None:
    host = Host(db_path)
    server = f"sessiontree-test-{uuid.uuid4().hex[:8]}"  # a tmux server of our own
    tmux = ["tmux", "-L", server]
    fds: list[int] = []
    try:
        tree = host.ask("tree t 2")
        root, kids = tree["root"], tree["kids"]
        command = shlex.join([sys.executable, "-m", "sessiontree.console.cli", "console",
                              "--db", str(db_path), "--refresh", "0.1"])
        subprocess.run([*tmux, "new-session", "-d", "-s", "console", "-x", "200", "-y", "50",
                        command], check=True, cwd=tmp_path)

        # Everything the console draws also goes down a FIFO (tmux pipe-pane): the test
        # reads the screen again each time the console has drawn something.
        fifo = tmp_path / "pane.fifo"
        os.mkfifo(fifo)
        drawn = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        fds += [drawn, os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)]  # the 2nd: no EOF, ever
        subprocess.run([*tmux, "pipe-pane", "-t", "console", f"cat > {shlex.quote(str(fifo))}"],
                       check=True)

        def screen() -> str:
            return subprocess.run([*tmux, "capture-pane", "-p", "-t", "console"],
                                  capture_output=True, text=True).stdout

        def wait_screen(check: Callable[[str], bool], what: str) -> str:
            deadline = time.monotonic() + WAIT
            while not check(text := screen()):
                left = deadline - time.monotonic()
                assert left > 0, f"timed out waiting for {what}:\n{text}"
                if select.select([drawn], [], [], left)[0]:  # the console drew something
                    with contextlib.suppress(BlockingIOError):
                        while os.read(drawn, 1 << 16):
                            pass
            return text

        wait_screen(lambda s: all(k[-8:] in s for k in kids) and "running" in s, "the tree")
        subprocess.run([*tmux, "send-keys", "-t", "console", "Down", "p"], check=True)
        wait_screen(lambda s: "paused*" in s, "the first kid marked paused")
        host.ask("release t 0")
        host.ask("release t 1")
        first = kids[0]
        host.ask(f"await {first} paused")
        wait_screen(lambda s: f"kid {first[-8:]} paused" in s, "the kid paused on screen")
        subprocess.run([*tmux, "send-keys", "-t", "console", "r"], check=True)
        wait_screen(lambda s: f"root {root[-8:]} completed" in s, "the root completed")
        subprocess.run([*tmux, "send-keys", "-t", "console", "q"], check=True)
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)
        for fd in fds:
            os.close(fd)
        host.close()
