"""Dispatch throughput: model_runs/s through the whole path, beside raw SQLite commits/s.

    python bench/dispatch.py [--sessions 200] [--repeat 3]

Measured in one run, on one machine, so the ratio means something on a noisy box:
- single-turn: N sessions, one model_run each (queue, actor, provider, reply stored,
  checkpoint, session completed, announce bookkeeping);
- tool loop: N sessions x 5 model_runs, each of the first four calling a read-only tool
  (intent and result journaled);
- spawn: roots each spawning children that answer at once; spawned-and-announced
  children per second;
- raw: single-row SQLite commits per second (WAL, synchronous=NORMAL), same directory.
Medians over ``--repeat`` runs. ScriptedProvider at zero latency.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import sessiontree as st


class NoArgs(BaseModel):
    n: int = 0


@st.tool("noop", NoArgs, effect="read_only")
def noop(ctx: st.ToolContext, args: NoArgs) -> str:
    return "ok"


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

    rt.store.add_listener(on_commit)  # type: ignore[arg-type]
    return done, lambda: rt.store.remove_listener(on_commit)  # type: ignore[arg-type]


def runs_per_second(directory: Path, sessions: int, turns: int) -> float:
    def policy(turn: st.ScriptTurn) -> st.ModelReply:
        if turn.turn < turns - 1:
            return st.reply("", st.call("noop", n=turn.turn))
        return st.reply("done")

    with st.Runtime.open(directory / f"runs-{turns}.db", providers=[st.ScriptedProvider(policy)],
                         tools=[noop]) as rt:
        ids = [rt.create_session("t", start=False) for _ in range(sessions)]
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="model_run dispatch throughput")
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    results: dict[str, list[float]] = {"single": [], "loop": [], "spawn": [], "raw": []}
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="sessiontree-bench-") as tmp:
            d = Path(tmp)
            results["single"].append(runs_per_second(d, args.sessions, 1))
            results["loop"].append(runs_per_second(d, args.sessions, 5))
            results["spawn"].append(children_per_second(d, 10, 20))
            results["raw"].append(raw_commits_per_second(d))
    med = {k: statistics.median(v) for k, v in results.items()}
    print(f"sessiontree dispatch benchmark, median of {args.repeat} (python {sys.version.split()[0]})")
    print(f"  model_runs/s, single-turn sessions  : {med['single']:8.0f}")
    print(f"  model_runs/s, 5-turn tool loop      : {med['loop']:8.0f}")
    print(f"  children spawned+announced/s        : {med['spawn']:8.0f}")
    print(f"  raw single-row SQLite commits/s     : {med['raw']:8.0f}")
    print(f"  ratio raw commits : model_runs (loop): {med['raw'] / med['loop']:8.1f} : 1")
    print(f"  target >= 1000 model_runs/s         : "
          f"{'met' if med['loop'] >= 1000 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
