"""Dispatch throughput: model_runs/s through the whole path, beside raw SQLite commits/s.

    python bench/dispatch.py [--sessions 200] [--repeat 3] [--against REV] [--cold]

Measured in one run, on one machine, so the ratio means something on a noisy box:
- single-turn: N sessions, one model_run each (queue, actor, provider, reply stored,
  checkpoint, session completed, announce bookkeeping);
- tool loop: N sessions x 5 model_runs, each of the first four calling a read-only tool
  (intent and result journaled);
- spawn: roots each spawning children that answer at once; spawned-and-announced
  children per second;
- raw: single-row SQLite commits per second (WAL, synchronous=NORMAL), same directory.
Medians over ``--repeat`` runs. ScriptedProvider at zero latency. Each round runs in a
fresh interpreter, warms up with a small untimed round, and starts each measure after a
full garbage collection (see ``measure_once``; ``--cold`` skips both).

``--against REV`` measures the library as of git revision REV beside this one, with this
benchmark's code, alternating one round each so the machine's noise hits both alike,
and prints both columns and their ratio -- and, with ``--repeat`` 4 or more, the ratio
of each round's pair: its median, interquartile range and how many rounds fell below 1.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, os.environ.get("SESSIONTREE_BENCH_ROOT", str(ROOT)))  # see --against
import sessiontree as st  # noqa: E402 - from the tree chosen above


class NoArgs(BaseModel):
    n: int = 0


@st.tool("noop", NoArgs, effect="read_only")
def noop(ctx: st.ToolContext, args: NoArgs) -> str:
    return "ok"



def _store(rt: st.Runtime) -> Any:
    """The runtime's store: ``Runtime.store`` up to 2bb5bd1, private since (the benchmark
    counts every commit's state changes, which the public ``on_change`` does not pass)."""
    return getattr(rt, "_store", None) or rt.store

def _until_completed(rt: st.Runtime, count: int) -> tuple[threading.Event, Callable[[], None]]:
    done = threading.Event()
    seen = [0]
    lock = threading.Lock()

    def on_commit(summary: object) -> None:
        for _, state in getattr(summary, "states", ()):
            if state in ("completed", "failed", "cancelled"):
                with lock:
                    seen[0] += 1
                    if seen[0] >= count:
                        done.set()

    _store(rt).add_listener(on_commit)  # type: ignore[arg-type]
    return done, lambda: _store(rt).remove_listener(on_commit)  # type: ignore[arg-type]


def runs_per_second(directory: Path, sessions: int, turns: int) -> float:
    def policy(turn: st.ScriptTurn) -> st.ModelReply:
        if turn.turn < turns - 1:
            return st.reply("", st.call("noop", n=turn.turn))
        return st.reply("done")

    with st.Runtime.open(directory / f"runs-{turns}.db", providers=[st.ScriptedProvider(policy)],
                         tools=[noop]) as rt:
        # deny by default: the noop tool needs tool:noop (older trees ignore the grant)
        ids = [rt.create_session("t", capabilities=["tool:noop"], start=False)
               for _ in range(sessions)]
        done, stop = _until_completed(rt, sessions)
        started = time.perf_counter()
        for sid in ids:
            rt.enqueue(sid)
        if not done.wait(600):
            raise RuntimeError("benchmark did not finish")
        elapsed = time.perf_counter() - started
        stop()
        assert all(rt.session(s).state == "completed" for s in ids)
    return sessions * turns / elapsed


def children_per_second(directory: Path, roots: int, children: int) -> float:
    def policy(turn: st.ScriptTurn) -> st.ModelReply:
        if turn.role != "root":
            return st.reply("child done")
        if turn.turn == 0:
            return st.reply("", *[st.call("spawn_session", role="child", task=str(i))
                                  for i in range(children)])
        if turn.turn == 1:
            return st.reply("", st.call("wait_for_children"))
        return st.reply("root done")

    limits = st.Limits(max_children=children)
    with st.Runtime.open(directory / "spawn.db", providers=[st.ScriptedProvider(policy)],
                         limits=limits) as rt:
        ids = [rt.create_session("t", capabilities=["session.spawn"], start=False)
               for _ in range(roots)]
        done, stop = _until_completed(rt, roots * (children + 1))
        started = time.perf_counter()
        for sid in ids:
            rt.enqueue(sid)
        if not done.wait(600):
            raise RuntimeError("benchmark did not finish")
        elapsed = time.perf_counter() - started
        stop()
        assert all(rt.session(s).state == "completed" for s in ids)
    return roots * children / elapsed


def raw_commits_per_second(directory: Path, count: int = 5000) -> float:
    con = sqlite3.connect(directory / "raw.db", isolation_level=None)
    con.execute("PRAGMA journal_mode=wal")
    con.execute("PRAGMA synchronous=normal")
    con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    started = time.perf_counter()
    for i in range(count):
        con.execute("BEGIN")
        con.execute("INSERT INTO t (v) VALUES (?)", (f"row {i}",))
        con.execute("COMMIT")
    elapsed = time.perf_counter() - started
    con.close()
    return count / elapsed


MEASURES = ("single", "loop", "spawn", "raw")


def measure_once(sessions: int, *, cold: bool = False) -> dict[str, float]:
    """One round: each measure in turn, in this interpreter.

    Unless ``cold``, a small untimed round of each workload runs first and every
    measure starts after a full collection (``gc.collect``), the collector still on
    while it runs: a fresh interpreter's first full collection (over every object its
    imports made, ~20 ms for this package) otherwise lands in whichever window its
    counters happen to tip over in, and on a 0.2 s window that alone moves a figure by
    a tenth (``--cold`` measures that way, as this benchmark did up to c57b9ee)."""
    with tempfile.TemporaryDirectory(prefix="sessiontree-bench-") as tmp:
        d = Path(tmp)
        if not cold:
            warm = d / "warm-up"
            warm.mkdir()
            runs_per_second(warm, 20, 1)
            runs_per_second(warm, 20, 5)
            children_per_second(warm, 2, 5)
        measures: dict[str, Callable[[], float]] = {
            "single": lambda: runs_per_second(d, sessions, 1),
            "loop": lambda: runs_per_second(d, sessions, 5),
            "spawn": lambda: children_per_second(d, 10, 20),
            "raw": lambda: raw_commits_per_second(d),
        }
        out = {}
        for key, measure in measures.items():
            if not cold:
                gc.collect()
            out[key] = measure()
        return out


def _round_in(root: Path, sessions: int, cold: bool) -> dict[str, float]:
    """One round in a fresh interpreter, importing sessiontree from ``root``."""
    env = dict(os.environ, SESSIONTREE_BENCH_ROOT=str(root), PYTHONPATH=str(root))
    out = subprocess.run(
        [sys.executable, __file__, "--sessions", str(sessions), "--one-round",
         *(["--cold"] if cold else [])],
        env=env, check=True, capture_output=True, text=True,
    ).stdout
    return dict(json.loads(out.splitlines()[-1]))


def _rows(med: dict[str, float]) -> list[tuple[str, str, str]]:
    """(measure, label, figure) for each printed line; measure is "" for derived lines."""
    return [
        ("single", "model_runs/s, single-turn sessions  ", f"{med['single']:8.0f}"),
        ("loop", "model_runs/s, 5-turn tool loop      ", f"{med['loop']:8.0f}"),
        ("spawn", "children spawned+announced/s        ", f"{med['spawn']:8.0f}"),
        ("", "raw single-row SQLite commits/s     ", f"{med['raw']:8.0f}"),
        ("", "ratio raw commits : model_runs (loop)", f"{med['raw'] / med['loop']:8.1f} : 1"),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="model_run dispatch throughput")
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--against", metavar="REV", help="also measure git revision REV")
    parser.add_argument("--cold", action="store_true",
                        help="no warm-up round and no collection before each measure")
    parser.add_argument("--one-round", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one_round:
        print(json.dumps(measure_once(args.sessions, cold=args.cold)))
        return 0
    ours: dict[str, list[float]] = {k: [] for k in MEASURES}
    theirs: dict[str, list[float]] = {k: [] for k in MEASURES}
    with tempfile.TemporaryDirectory(prefix="sessiontree-against-") as tmp:
        other = Path(tmp) / "tree"
        if args.against:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet",
                            str(other), args.against], check=True)
        try:
            for _ in range(args.repeat):
                for key, value in _round_in(ROOT, args.sessions, args.cold).items():
                    ours[key].append(value)
                if args.against:
                    for key, value in _round_in(other, args.sessions, args.cold).items():
                        theirs[key].append(value)
        finally:
            if args.against:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                                str(other)], check=False)
    med = {k: statistics.median(v) for k, v in ours.items()}
    print(f"sessiontree dispatch benchmark, median of {args.repeat} (python {sys.version.split()[0]})")
    if args.against:
        old = {k: statistics.median(v) for k, v in theirs.items()}
        print(f"  {'':37s}   {'this':>8s}   {args.against[:10]:>10s}   ratio")
        for (key, label, mine), (_, _, its) in zip(_rows(med), _rows(old), strict=True):
            ratio = f"{med[key] / old[key]:5.2f}x" if key else ""
            print(f"  {label}: {mine}   {its:>10s}   {ratio}")
        if args.repeat >= 4:  # round by round: each pair met the same moment's noise
            print("  paired, round by round (median, interquartile range, rounds below 1):")
            for key in ("single", "loop", "spawn"):
                pairs = [a / b for a, b in zip(ours[key], theirs[key], strict=True)]
                low, _, high = statistics.quantiles(pairs, n=4)
                below = sum(r < 1 for r in pairs)
                print(f"    {key:7s} {statistics.median(pairs):5.2f}   {low:.2f}-{high:.2f}   "
                      f"{below}/{len(pairs)}")
    else:
        for _, label, value in _rows(med):
            print(f"  {label}: {value}")
    print(f"  target >= 1000 model_runs/s         : "
          f"{'met' if med['loop'] >= 1000 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
