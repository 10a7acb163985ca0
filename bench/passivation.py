"""Passivation: one process holds 20,000 sessions, 10,000 of them waiting, on few threads.

    python bench/passivation.py [--parents 10000]

Each of ``--parents`` roots spawns one child and waits for it in the same turn. The
children use a provider capped at one run in flight whose single running call is held
on an event, so at the moment of measurement every parent is ``waiting`` and every
child but one is ``queued``: a session with nothing to do has no actor and no thread.
Prints the sessions by state, the live thread count, the peak RSS and the time taken.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import sessiontree as st


def _store(rt: st.Runtime) -> Any:
    """The runtime's store: ``Runtime.store`` up to 2bb5bd1, private since (the benchmark
    counts every commit's state changes, which the public ``on_change`` does not pass)."""
    return getattr(rt, "_store", None) or rt.store

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="passivation: many idle sessions, few threads")
    parser.add_argument("--parents", type=int, default=10_000)
    args = parser.parse_args(argv)
    gate = threading.Event()

    def parent(turn: st.ScriptTurn) -> st.ModelReply:
        if turn.turn == 0:
            return st.reply("", st.call("spawn_session", role="child", task="hold", provider="child"),
                            st.call("wait_for_children"))
        return st.reply("parent done")

    def child(turn: st.ScriptTurn) -> st.ModelReply:
        gate.wait(600)  # the one child let run is held here until the measurement is taken
        return st.reply("child done")

    parents = st.ScriptedProvider(parent, name="parent")
    children = st.ScriptedProvider(child, name="child")
    limits = st.Limits(max_concurrent_runs=8, provider_limits={"child": 1})
    started = time.perf_counter()
    peak_threads = 0
    with tempfile.TemporaryDirectory(prefix="sessiontree-passivation-") as tmp, \
            st.Runtime.open(Path(tmp) / "p.db", providers=[parents, children], limits=limits) as rt:

        def on_commit(summary: object) -> None:
            nonlocal peak_threads
            peak_threads = max(peak_threads, threading.active_count())

        _store(rt).add_listener(on_commit)  # type: ignore[arg-type]
        ids = [rt.create_session("hold a child", provider="parent", capabilities=["session.spawn"])
               for _ in range(args.parents)]
        created = time.perf_counter() - started
        for sid in ids:
            rt.wait_state(sid, "waiting", timeout=600)
        held = time.perf_counter() - started
        states = Counter(s.state for s in rt.sessions())
        threads = threading.active_count()
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        total = sum(states.values())
        print(f"sessions: {total} ({dict(sorted(states.items()))})")
        print(f"waiting sessions: {states['waiting']}; live threads now: {threads}; "
              f"peak threads seen: {peak_threads}")
        print(f"peak RSS: {rss_mb:.0f} MiB; roots created in {created:.1f}s; "
              f"all parents waiting after {held:.1f}s")
        ok = total >= 2 * args.parents and states["waiting"] >= args.parents and peak_threads < 200
        print("holds 20,000 sessions, 10,000 waiting, under 200 threads:" if args.parents == 10_000
              else "holds the sessions under 200 threads:", "yes" if ok else "NO")
        gate.set()
        _store(rt).remove_listener(on_commit)  # type: ignore[arg-type]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
