"""Chaos: run the research tree in a child process, SIGKILL it at seeded random moments,
resume it, and count what was lost or duplicated.

    python bench/chaos.py --trials 200 [--children 20] [--kills 1] [--seed 1]

A trial: a fresh store and workspace; the child runs ``examples/research_tree.py``; the
harness kills it once the store holds a seeded random number of committed events
(``--kills`` times), then lets a last run finish the tree. Before each kill it snapshots
every committed message (session, seq, chain hash) through its own connection.

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
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "research_tree.py"  # runs sessiontree/console/demo.py
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


def _start(db: Path, workspace: Path, children: int, latency: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(EXAMPLE), "--db", str(db), "--workspace", str(workspace),
         "--children", str(children), "--latency", str(latency), "--no-live"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def _kill_at(proc: subprocess.Popen[bytes], db: Path, target: int, timeout: float) -> bool:
    """Wait until the store holds ``target`` events, then SIGKILL. False if it ended first."""
    tick = threading.Event()
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if _event_count(db) >= target:
            break
        tick.wait(0.002)  # bounded poll of another process's store, not a synchronisation sleep
    if proc.poll() is not None:
        return False
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    return True


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
        proc = _start(db, workspace, children, latency)
        target = rng.randint(5, EVENTS_PER_CHILD * children)
        # Snapshot what is committed now, then kill as close to ``target`` as we can.
        if _kill_at(proc, db, target, timeout):
            result.kills += 1
            seen.update(_messages(db))
        else:
            seen.update(_messages(db))
            break
    final = _start(db, workspace, children, latency)
    try:
        _, err = final.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        final.kill()
        final.wait()
        result.lost.append("final run timed out")
        return result
    if final.returncode != 0:
        result.lost.append(f"final run exited {final.returncode}: {err.decode()[-500:]}")
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
    args = parser.parse_args(argv)
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
