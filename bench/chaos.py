"""Chaos: run the research tree in a child process, SIGKILL it at seeded random moments,
resume it, and count what was lost or duplicated.

    python bench/chaos.py --trials 200 [--children 20] [--kills 1] [--seed 1]

A trial: a fresh store and workspace; a child process runs the research tree
(``examples/research_tree.py``) and SIGKILLs itself at the first named fault point
(provider or tool call, before or after, or a run's start; see ``sessiontree.testing``)
reached once the store holds a seeded random number of committed events (``--kills``
times); then a last run finishes the tree. After each kill the harness snapshots every
committed message (session, seq, chain hash) through its own connection.

The kill point is decided inside the child, from the store's content: never by a
harness polling from outside, which under load could see the target late -- after the
tree had finished -- and kill a process that was only closing, so that the next run
started a second tree (the flake of issue 15). A run is never started on a tree that
has already ended.

Lost = a snapshotted message missing or changed afterwards, a child not announced, a
finished ``append_note`` call without its line in ``notes.log``, a session not
completed, or ``verify`` failing. Duplicated = a tool call id twice in ``notes.log`` or
a child announced twice. ``tests/test_kill.py`` runs this harness on a few trials.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EVENTS_PER_CHILD = 44  # a full 20-child run commits ~900 events; kill inside that span


@dataclass
class TrialResult:
    kills: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _event_count(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
            return int(con.execute("SELECT COALESCE(MAX(id), 0) FROM event").fetchone()[0])
    except sqlite3.Error:
        return 0  # not created yet, or mid-creation


def _messages(db: Path) -> dict[tuple[str, int], str]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
        rows = con.execute("SELECT session_id, seq, chain_hash FROM message").fetchall()
    return {(s, q): h for s, q, h in rows}


def _tree_ended(db: Path) -> bool:
    """True once the store holds a root and every root has ended."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
            states = [r[0] for r in con.execute("SELECT state FROM session WHERE parent_id IS NULL")]
    except sqlite3.Error:
        return False
    return bool(states) and all(s in ("completed", "failed", "cancelled") for s in states)


def _run(
    db: Path, workspace: Path, children: int, latency: float, kill_at: int | None, timeout: float,
) -> tuple[int | None, str]:
    """Run the tree in a child process until it ends, or kills itself at ``kill_at`` events.
    Returns its exit status (None if it had to be stopped after ``timeout``) and stderr."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--db", str(db),
           "--workspace", str(workspace), "--children", str(children), "--latency", str(latency)]
    if kill_at is not None:
        cmd += ["--kill-at", str(kill_at)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        return None, err.decode(errors="replace")
    return proc.returncode, err.decode(errors="replace")


def child(db: Path, workspace: Path, children: int, latency: float, kill_at: int | None) -> int:
    """The child process: run (or resume) the tree; SIGKILL itself at the first fault
    point reached once the store holds ``kill_at`` events."""
    sys.path.insert(0, str(ROOT))
    from sessiontree.console import demo as example  # the research tree

    def kill_point(step: str, facts: dict[str, object]) -> None:
        if kill_at is not None and _event_count(db) >= kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    root = example.run_root(db, workspace, children=children, latency=latency, live=False,
                            echo=lambda line: None, fault_hook=kill_point)
    return 0 if root.state == "completed" else 1


def run_trial(
    base: Path, rng: random.Random, *, children: int = 20, kills: int = 1,
    latency: float = 0.002, timeout: float = 60.0,
) -> TrialResult:
    """One trial in ``base`` (a fresh directory). Returns what was lost or duplicated."""
    started = time.monotonic()
    base.mkdir(parents=True, exist_ok=True)
    db, workspace = base / "tree.db", base / "workspace"
    result = TrialResult()
    seen: dict[tuple[str, int], str] = {}
    for _ in range(kills):
        target = rng.randint(5, EVENTS_PER_CHILD * children)
        if _tree_ended(db):
            break  # a run now would start a second tree
        status, err = _run(db, workspace, children, latency, target, timeout)
        if status == -signal.SIGKILL:
            result.kills += 1
        elif status != 0:
            result.lost.append(f"run exited {status}: {err[-500:]}")
            return result
        seen.update(_messages(db))  # what is committed now must survive
    if not _tree_ended(db):
        status, err = _run(db, workspace, children, latency, None, timeout)
        if status != 0:
            result.lost.append(f"final run exited {status}: {err[-500:]}")
    _check(db, workspace, children, seen, result)
    result.seconds = time.monotonic() - started
    return result


def _check(
    db: Path, workspace: Path, children: int, seen: dict[tuple[str, int], str], result: TrialResult
) -> None:
    sys.path.insert(0, str(ROOT))
    from sessiontree import verify_store
    from sessiontree.persistence import open_store

    after = _messages(db)
    for key, chain in seen.items():
        if after.get(key) != chain:
            result.lost.append(f"message {key} committed before a kill is missing or changed")
    store = open_store(db, create=False)
    try:
        report = verify_store(store)
        if not report.ok:
            result.lost.append(f"verify: {report.first_bad}")
        sessions = store.sessions()
        roots = [s for s in sessions if s.parent_id is None]
        if len(roots) != 1:
            result.lost.append(f"{len(roots)} roots instead of 1")
        for s in sessions:
            if s.state != "completed":
                result.lost.append(f"session {s.id} ({s.role}) ended {s.state}/{s.state_reason}")
        kids = [s for s in sessions if s.parent_id is not None]
        if len(kids) != children:
            result.lost.append(f"{len(kids)} children instead of {children}")
        if roots:
            senders = Counter(m.sender_id for m in store.mailbox(roots[0].id))
            for kid in kids:
                if senders[kid.id] == 0:
                    result.lost.append(f"child {kid.id} never announced")
            announced = Counter(
                e.model_session_id for e in store.events(type_prefix="FR-EVT-SESS-SPAWN-ANNOUNCED")
            )
            result.duplicated += [f"child {k} announced {n} times"
                                  for k, n in announced.items() if n > 1]
        notes = (workspace / "notes.log").read_text(encoding="utf-8").splitlines() \
            if (workspace / "notes.log").exists() else []
        ids = Counter(line.split("\t", 1)[0] for line in notes if line.strip())
        result.duplicated += [f"call {c} in notes.log {n} times" for c, n in ids.items() if n > 1]
        for call in store.tool_calls(states=["done"]):
            if call.tool == "append_note" and ids[call.id] == 0:
                result.lost.append(f"append_note {call.id} is done but has no line")
        if len(ids) != children:
            result.lost.append(f"notes.log has {len(ids)} distinct calls, expected {children}")
    finally:
        store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--children", type=int, default=20)
    parser.add_argument("--kills", type=int, default=1, help="kills per trial")
    parser.add_argument("--latency", type=float, default=0.002)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--workspace", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--kill-at", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.db, args.workspace, args.children, args.latency, args.kill_at)
    import tempfile

    base = args.dir or Path(tempfile.mkdtemp(prefix="sessiontree-chaos-"))
    rng = random.Random(args.seed)
    lost = duplicated = kills = 0
    times: list[float] = []
    started = time.monotonic()
    for n in range(args.trials):
        r = run_trial(base / f"trial-{n:04d}", rng, children=args.children, kills=args.kills,
                      latency=args.latency)
        kills += r.kills
        lost += len(r.lost)
        duplicated += len(r.duplicated)
        times.append(r.seconds)
        if args.verbose or r.lost or r.duplicated:
            print(json.dumps({"trial": n, "kills": r.kills, "lost": r.lost,
                              "duplicated": r.duplicated, "seconds": round(r.seconds, 2)}))
    print(f"{args.trials} trials, {kills} kills (seed {args.seed}, {args.children} children each): "
          f"median trial {statistics.median(times):.2f}s, total {time.monotonic() - started:.0f}s")
    print(f"{args.trials} trials, {lost} lost, {duplicated} duplicated")
    return 0 if lost == 0 and duplicated == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
