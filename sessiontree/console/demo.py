"""A research tree: a root session fans out to researchers and composes their findings.

The root spawns N ``researcher`` children, one per file of a small bundled workspace
(package data: ``sessiontree/console/demo_workspace/``, copied to a scratch
directory). Each child reads its file with a read-only tool, appends one line to
``notes.log`` with a tool that has an effect in the world, and announces a one-line
summary. The root waits for all of them, then answers with their summaries. The first
researcher asks for a capability the root lacks (``net.http:api.example.com``): it is
spawned without it, and ``sessiontree events --type FR-EVT-SESS-SPAWN-ACCEPTED`` shows
it dropped. Every tool call has a ``FR-EVT-SESS-TOOL-INTENT`` event naming the tokens
that allowed it (``wait_for_children``'s names its condition, ``has_children``), or a
``FR-EVT-SESS-TOOL-DENIED`` one naming the reason.

Run it::

    sessiontree demo --db demo.db --workspace demo-workspace
    python examples/research_tree.py --db demo.db --workspace demo-workspace   # the same

Kill it (even ``kill -9``) and run the same command again: the store still holds the
unfinished tree, and this script resumes it instead of starting a new one. The same
resume works for any host through ``sessiontree recover --db demo.db --app
sessiontree.console.demo:setup``: :func:`setup` is the runtime factory that registers
the provider and the tools, which live in code, not in the store.

The model is :class:`sessiontree.ScriptedProvider` with the deterministic
:func:`policy` below, so the demo runs offline and gives the same answer every time.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

import sessiontree as st

DEMO = "research_tree"
"""Stored in the root's meta, so a later run can find an unfinished demo tree."""

BUNDLED_WORKSPACE = Path(__file__).resolve().parent / "demo_workspace"
"""The demo's bundled notes: package data, installed with sessiontree."""
NOTES = "notes.log"
DEFAULT_CHILDREN = 3
WEB = "net.http:api.example.com"
"""A capability one researcher asks for and the root does not hold (so it is dropped)."""

LATENCY = 0.0
"""Simulated provider latency (seconds per model call) used by :func:`setup`."""

CHILD_RUNS, CHILD_TOKENS = 6, 60_000
"""A researcher's budget: it needs three model runs; the rest is headroom for retries."""

_CHILDREN_RE = re.compile(r"children=(\d+)")
_FILE_RE = re.compile(r"file=(\S+?):")


# -- tools ------------------------------------------------------------------------------
class ReadFileArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1, description="a file inside the session's workspace")


class AppendNoteArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=2000, description="one line of notes")


@st.tool("read_file", ReadFileArgs, effect="read_only", capability="fs.read")
def read_file(ctx: st.ToolContext, args: ReadFileArgs) -> str:
    """Read a text file of the workspace."""
    target = ctx.workspace_path(args.path)  # ToolError on an escape
    if not target.is_file():
        raise st.ToolError(f"no such file in the workspace: {args.path}")
    return target.read_text(encoding="utf-8")


@st.tool("append_note", AppendNoteArgs, effect="idempotent", capability="fs.write")
def append_note(ctx: st.ToolContext, args: AppendNoteArgs) -> dict[str, Any]:
    """Append one line to notes.log in the workspace."""
    # Declared idempotent, and it earns that: the line carries the call id, and a call
    # whose line is already there writes nothing. If the process dies after the write but
    # before the result is committed, recovery runs this call again (same call id, same
    # idempotency key) and the outside world honours the key, so a re-run after a crash
    # never writes twice. One call runs at a time per session, so check-then-append is
    # safe; concurrent sessions append whole lines with one O_APPEND write each.
    path = ctx.workspace_path(NOTES)
    line = f"{ctx.call_id}\t{ctx.session_id}\t{' '.join(args.text.split())}\n"
    if path.exists():
        with path.open(encoding="utf-8") as fh:
            if any(existing.split("\t", 1)[0] == ctx.call_id for existing in fh):
                return {"appended": False, "duplicate": True}
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode("utf-8"))
        os.fsync(fd)  # on disk before the result says so
    finally:
        os.close(fd)
    return {"appended": True, "duplicate": False}


TOOLS = (read_file, append_note)


# -- the scripted model -----------------------------------------------------------------
def topics(workspace: Path = BUNDLED_WORKSPACE) -> list[str]:
    """The bundled files the researchers read, in a fixed order."""
    return sorted(p.name for p in workspace.iterdir() if p.is_file() and p.suffix == ".md")


def root_task(children: int) -> str:
    return f"Survey the workspace notes and summarise what they teach (children={children})."


def _finding(text: str) -> str:
    """The first line of prose in a notes file."""
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            return line
    return "(empty file)"


def policy(turn: st.ScriptTurn) -> st.ModelReply:
    """Deterministic: the reply depends only on the role, the task and the history."""
    if turn.role == "root":
        return _root(turn)
    return _researcher(turn)


def _root(turn: st.ScriptTurn) -> st.ModelReply:
    if turn.turn == 0:
        match = _CHILDREN_RE.search(turn.task)
        n = int(match.group(1)) if match else DEFAULT_CHILDREN
        files = topics()
        # The first researcher also asks for the web, which the root was not given: the
        # child is spawned without it, and the spawn result (and its SPAWN-ACCEPTED
        # event) names it as dropped. A child never holds more than its parent.
        spawns = [
            st.call("spawn_session", role="researcher",
                    task=f"file={files[i % len(files)]}: read it and note one finding.",
                    capabilities=["fs.read", "fs.write", *([WEB] if i == 0 else [])],
                    budget={"model_runs": CHILD_RUNS, "tokens": CHILD_TOKENS})
            for i in range(n)
        ]
        return st.reply(f"Spawning {n} researchers.", *spawns)
    if turn.turn == 1:
        return st.reply("Waiting for the researchers.", st.call("wait_for_children"))
    result = turn.result_json()
    children = result.get("children", []) if isinstance(result, dict) else []
    lines = [f"Findings of {len(children)} researchers:"]
    for i, child in enumerate(children, 1):
        if child.get("status") == "completed":
            lines.append(f"{i}. {child.get('summary', '')}")
        else:
            lines.append(f"{i}. ({child.get('status')}: {child.get('reason')})")
    return st.reply("\n".join(lines))


def _researcher(turn: st.ScriptTurn) -> st.ModelReply:
    match = _FILE_RE.search(turn.task)
    name = match.group(1) if match else "README.md"
    if turn.turn == 0:
        return st.reply(f"Reading {name}.", st.call("read_file", path=name))
    if turn.turn == 1:
        read = turn.tool_results[0] if turn.tool_results else None
        text = read.content if read is not None else ""
        return st.reply("Noting the finding.",
                        st.call("append_note", text=f"{name}: {_finding(text)}"))
    return st.reply(f"{name}: {_finding(_read_back(turn))}")


def _read_back(turn: st.ScriptTurn) -> str:
    """The text the researcher read on its first turn."""
    for message in turn.messages:
        if message.role == "tool" and message.name == "read_file":
            return message.content
    return ""


# -- the runtime factory ----------------------------------------------------------------
def make_setup(latency: float | None = None) -> Callable[[st.Runtime], None]:
    """A runtime factory with the given simulated provider latency."""

    def _setup(rt: st.Runtime) -> None:
        delay = LATENCY if latency is None else latency
        rt.register_provider(st.ScriptedProvider(policy, latency=delay))
        for t in TOOLS:
            rt.register_tool(t)

    return _setup


def setup(rt: st.Runtime) -> None:
    """Register the scripted provider (latency :data:`LATENCY`) and the demo's tools.

    This is the factory for ``sessiontree recover --app examples.research_tree:setup``.
    """
    make_setup()(rt)


def limits(children: int = DEFAULT_CHILDREN) -> st.Limits:
    return st.Limits(max_concurrent_runs=8, max_children=max(8, children))


# -- running ----------------------------------------------------------------------------
def unfinished_root(rt: st.Runtime) -> st.SessionInfo | None:
    """The latest root of this demo in the store that has not ended, if any."""
    found = None
    for record in rt.sessions():
        if (record.parent_id is None and record.role == "root"
                and record.meta.get("demo") == DEMO
                and not record.terminal):
            found = record
    return rt.session(found.id) if found is not None else None


def prepare_workspace(workspace: str | Path | None) -> Path:
    """A scratch copy of the bundled workspace: ``workspace`` (kept if it already holds
    the files) or a fresh temporary directory."""
    target = Path(tempfile.mkdtemp(prefix="sessiontree-demo-")) if workspace is None else Path(workspace)
    target.mkdir(parents=True, exist_ok=True)
    for name in topics():
        if not (target / name).exists():
            shutil.copy2(BUNDLED_WORKSPACE / name, target / name)
    return target


def answer_of(session: st.SessionInfo) -> str:
    if session.state == "completed":
        return session.summary or ""
    return f"the root session ended {session.state} ({session.reason})"


def run(
    db: str | Path,
    workspace: str | Path | None = None,
    children: int = DEFAULT_CHILDREN,
    latency: float = 0.0,
    live: bool = True,
    echo: Callable[[str], None] = print,
) -> str:
    """Run (or resume) the research tree in the store ``db``; return the root's answer."""
    return answer_of(run_root(db, workspace, children, latency, live, echo))


def run_root(
    db: str | Path,
    workspace: str | Path | None = None,
    children: int = DEFAULT_CHILDREN,
    latency: float = 0.0,
    live: bool = True,
    echo: Callable[[str], None] = print,
    fault_hook: Callable[[str, dict[str, Any]], None] | None = None,
) -> st.SessionInfo:
    """Run (or resume) the research tree; return the root session once it has ended.

    An unfinished root of this demo in the store is resumed (recovery happens inside
    ``Runtime.open``) instead of starting a new tree; ``workspace`` and ``children``
    then come from the stored tree. ``echo`` hears one line saying which it did.
    ``fault_hook`` is passed to ``Runtime.open`` (``bench/chaos.py`` kills the process
    from it at a seeded point).
    """
    if children < 1:
        raise st.InvalidInput("children must be >= 1")
    register = make_setup(latency)
    unfinished: list[st.SessionInfo | None] = []

    def setup(rt: st.Runtime) -> None:
        register(rt)
        # Read before the scheduler starts: a resumed root may finish before a later
        # look, and must not be mistaken for no root at all (a second tree).
        unfinished.append(unfinished_root(rt))

    with st.Runtime.open(db, limits=limits(children), setup=setup,
                         fault_hook=fault_hook) as rt:
        root = unfinished[0]
        if root is not None:
            echo(f"resuming root {root.id} ({root.state}) in {db}, workspace {root.workspace}")
            root_id = root.id
        else:
            ws = prepare_workspace(workspace)
            root_id = rt.create_session(
                root_task(children), role="root",
                # the children's slices plus one more for the root's own three runs
                budget=st.Budget(model_runs=(children + 1) * CHILD_RUNS,
                                 tokens=(children + 1) * CHILD_TOKENS),
                capabilities=["session.spawn", "fs.read", "fs.write"],
                workspace=ws, max_children=children, meta={"demo": DEMO},
            )
            echo(f"started root {root_id} with {children} researchers in {db}, workspace {ws}")
        if live:
            from sessiontree.console.live import watch

            watch(rt, root_id)
        return rt.wait(root_id)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--db", default="demo.db", help="the store (default demo.db)")
    parser.add_argument("--workspace", help="scratch copy of the workspace (default: a temp dir)")
    parser.add_argument("--children", type=int, default=DEFAULT_CHILDREN)
    parser.add_argument("--latency", type=float, default=0.0, help="simulated seconds per model call")
    parser.add_argument("--no-live", action="store_true", help="no live tree view")
    args = parser.parse_args(argv)
    print(run(args.db, args.workspace, args.children, args.latency, live=not args.no_live))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
