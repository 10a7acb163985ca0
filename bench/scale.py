"""Scale: how sessiontree's figures hold as the number of sessions grows.

    python bench/scale.py [--parts curve latency recovery memory] [--quick]
                          [--sizes 100 1000 10000] [--repeat 1]
                          [--latency-sessions 100] [--latency 0.1] [--latency-turns 10]
                          [--recovery-sessions 10000] [--recovery-running 64]
                          [--memory-parents 10000]

Each part runs in a fresh interpreter; ``--quick`` shrinks every size for a smoke run.

- curve: the 5-turn tool loop (as ``bench/peers.py``) at each of ``--sizes`` sessions,
  all enqueued at once, zero model latency; model_runs/s and the ratio to the smallest
  size (target: >= 0.8 at 10,000 against 100). Medians of ``--repeat`` rounds, sizes
  alternated.
- latency: ``--latency-sessions`` sessions at once (``max_concurrent_runs`` as many), each
  a ``--latency-turns`` tool loop whose every model call takes ``--latency`` seconds
  (ScriptedProvider); calls/s against the ideal sessions / latency (target: >= 0.9).
- recovery: a host process (a subprocess) opens a store, creates ``--recovery-sessions``
  sessions whose provider never answers, ``--recovery-running`` of them in a model call
  and the rest queued, and is killed with SIGKILL; the store is then reopened here.
  Prints the time ``Runtime.open`` took (recovery re-queues every in-flight session and
  the scheduler loads the queue before it returns) and the time until the first model
  call is dispatched (target: both within 2 s), and checks that every session is queued.
- memory: ``--memory-parents`` roots each spawn one child and wait for it, the children
  held behind a provider capped at one call in flight (as ``bench/passivation.py``), so
  2x sessions exist and half are waiting; RSS (now and peak) and live threads (now and
  the most seen at any commit) (target: < 250 MiB, < 20 threads), read before anything
  lists the sessions; then the RSS once the host holds a list of all of them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT))
from peers import TURNS, Timer, run_sessiontree  # noqa: E402 - bench/ is not a package

PARTS = ("curve", "latency", "recovery", "memory")


def curve(size: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="sessiontree-scale-") as tmp:
        timer = Timer()
        run_sessiontree(Path(tmp) / "curve.db", size, 8, timer)
    return {"rate": size * TURNS / timer.wall, "cpu_ms": 1000 * timer.cpu / (size * TURNS)}


def latency(sessions: int, seconds: float, turns: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="sessiontree-scale-") as tmp:
        timer = Timer()
        run_sessiontree(Path(tmp) / "latency.db", sessions, sessions, timer, latency=seconds,
                        turns=turns)
    rate = sessions * turns / timer.wall
    ideal = sessions / seconds
    return {"rate": rate, "ideal": ideal, "fraction": rate / ideal,
            "cpu_ms": 1000 * timer.cpu / (sessions * turns)}


# --- recovery -------------------------------------------------------------------------------

def _running_jobs(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
            return int(con.execute("SELECT COUNT(*) FROM job WHERE state = 'running'").fetchone()[0])
    except sqlite3.Error:
        return 0


def host(db: Path, sessions: int, running: int) -> int:
    """The process to be killed: ``sessions`` in flight, ``running`` of them in a model call
    that never returns. Prints ``ready`` once they are, then waits to be killed."""
    import sessiontree as st

    provider = st.ScriptedProvider(lambda turn: st.reply("never"), latency=3600.0)
    rt = st.Runtime.open(db, providers=[provider], limits=st.Limits(max_concurrent_runs=running))
    for _ in range(sessions):
        rt.create_session("t")
    deadline = time.monotonic() + 600
    while _running_jobs(db) < min(running, sessions):
        if time.monotonic() > deadline:
            raise RuntimeError("the host's runs did not start")
        threading.Event().wait(0.05)  # polling the store with a deadline
    print("ready", flush=True)
    threading.Event().wait()  # until SIGKILL
    return 1


def recovery(sessions: int, running: int) -> dict[str, Any]:
    import sessiontree as st

    with tempfile.TemporaryDirectory(prefix="sessiontree-scale-") as tmp:
        db = Path(tmp) / "recovery.db"
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, __file__, "--host", str(db), str(sessions), str(running)],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if line.strip() != "ready":
            proc.kill()
            raise RuntimeError(f"host did not get ready: {line!r}")
        filled = time.perf_counter() - started
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        first = threading.Event()
        gate = threading.Event()

        def policy(turn: st.ScriptTurn) -> st.ModelReply:
            first.set()
            gate.wait(60)  # hold the dispatched calls until the measurement is taken
            return st.reply("done")

        t0 = time.perf_counter()
        rt = st.Runtime.open(db, providers=[st.ScriptedProvider(policy)],
                             limits=st.Limits(max_concurrent_runs=running))
        opened = time.perf_counter() - t0
        if not first.wait(60):
            raise RuntimeError("nothing was dispatched after recovery")
        dispatched = time.perf_counter() - t0
        report = rt.recovery
        gate.set()
        rt.close(timeout=30)
    return {"sessions": sessions, "running": running, "fill_s": filled, "open_s": opened,
            "dispatch_s": dispatched, "requeued": len(report.requeued_jobs),
            "queued": report.queued_jobs}


# --- memory ---------------------------------------------------------------------------------

def _rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def memory(parents: int) -> dict[str, Any]:
    import sessiontree as st

    gate = threading.Event()

    def parent(turn: st.ScriptTurn) -> st.ModelReply:
        if turn.turn == 0:
            return st.reply("", st.call("spawn_session", role="child", task="hold", provider="child"),
                            st.call("wait_for_children"))
        return st.reply("parent done")

    def child(turn: st.ScriptTurn) -> st.ModelReply:
        gate.wait(600)  # the one child let run is held until the measurement is taken
        return st.reply("child done")

    limits = st.Limits(max_concurrent_runs=8, provider_limits={"child": 1})
    peak_threads = 0
    with tempfile.TemporaryDirectory(prefix="sessiontree-scale-") as tmp, \
            st.Runtime.open(Path(tmp) / "m.db", providers=[st.ScriptedProvider(parent, name="parent"),
                                                           st.ScriptedProvider(child, name="child")],
                            limits=limits) as rt:
        def on_commit(summary: object) -> None:
            nonlocal peak_threads
            peak_threads = max(peak_threads, threading.active_count())

        store: Any = rt._store
        store.add_listener(on_commit)
        ids = [rt.create_session("hold a child", provider="parent", capabilities=["session.spawn"])
               for _ in range(parents)]
        for sid in ids:
            rt.wait_state(sid, "waiting", timeout=600)
        # What the runtime holds, read before anything lists the sessions: a host that
        # asks for all of them as SessionInfo holds that list too (measured after).
        result = {"sessions": store.count_sessions(), "waiting": store.count_sessions(["waiting"]),
                  "rss_mib": _rss_mib(),
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "threads": threading.active_count(), "peak_threads": peak_threads}
        listed = rt.sessions()
        result["listed"] = len(listed)
        result["listed_rss_mib"] = _rss_mib()
        del listed
        gate.set()
        store.remove_listener(on_commit)
    return result


# --- driver ---------------------------------------------------------------------------------

def _in_fresh(*args: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--one", *args], check=True,
                         capture_output=True, text=True).stdout
    return dict(json.loads(out.splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="sessiontree at scale")
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    p.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    p.add_argument("--sizes", type=int, nargs="+")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--latency-sessions", type=int)
    p.add_argument("--latency", type=float, default=0.1)
    p.add_argument("--latency-turns", type=int)
    p.add_argument("--recovery-sessions", type=int)
    p.add_argument("--recovery-running", type=int, default=64)
    p.add_argument("--memory-parents", type=int)
    p.add_argument("--one", nargs="+", help=argparse.SUPPRESS)
    p.add_argument("--host", nargs=3, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.host:
        return host(Path(a.host[0]), int(a.host[1]), int(a.host[2]))
    if a.one:
        part, *nums = a.one
        fn = {"curve": lambda: curve(int(nums[0])),
              "latency": lambda: latency(int(nums[0]), float(nums[1]), int(nums[2])),
              "recovery": lambda: recovery(int(nums[0]), int(nums[1])),
              "memory": lambda: memory(int(nums[0]))}[part]
        print(json.dumps(fn()))
        return 0
    q = a.quick
    sizes = a.sizes or ([20, 100] if q else [100, 1000, 10_000])
    lat_sessions = a.latency_sessions or (10 if q else 100)
    lat_turns = a.latency_turns or (3 if q else 10)
    rec_sessions = a.recovery_sessions or (200 if q else 10_000)
    rec_running = min(a.recovery_running, 8) if q else a.recovery_running
    parents = a.memory_parents or (100 if q else 10_000)
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip() or "?"
    print(f"sessiontree scale ({commit}, python {sys.version.split()[0]}, {os.cpu_count()} CPUs)")
    if "curve" in a.parts:
        runs: dict[int, list[dict[str, Any]]] = {n: [] for n in sizes}
        for r in range(a.repeat):
            k = r % len(sizes)
            for n in sizes[k:] + sizes[:k]:
                runs[n].append(_in_fresh("curve", str(n)))
        base = statistics.median(x["rate"] for x in runs[sizes[0]])
        print(f"  curve: {TURNS}-turn tool loop, zero model latency, median of {a.repeat}")
        head = "ratio to " + str(sizes[0])
        print(f"    {'sessions':>9s} {'model_runs/s':>13s} {'CPU/run':>9s} {head:>14s}")
        for n in sizes:
            rate = statistics.median(x["rate"] for x in runs[n])
            cpu = statistics.median(x["cpu_ms"] for x in runs[n])
            print(f"    {n:9d} {rate:13.0f} {cpu:7.2f}ms {rate / base:14.2f}")
    if "latency" in a.parts:
        x = _in_fresh("latency", str(lat_sessions), str(a.latency), str(lat_turns))
        print(f"  latency-bound: {lat_sessions} sessions at once, {a.latency * 1000:.0f} ms a model call, "
              f"{lat_turns}-turn tool loop")
        print(f"    {x['rate']:.0f} calls/s of an ideal {x['ideal']:.0f}: {x['fraction']:.2f} of ideal "
              f"(CPU {x['cpu_ms']:.2f} ms a call)")
    if "recovery" in a.parts:
        x = _in_fresh("recovery", str(rec_sessions), str(rec_running))
        every = "yes" if x["queued"] == rec_sessions else f"NO ({x['queued']} of {rec_sessions})"
        print(f"  recovery: {rec_sessions} sessions in flight ({x['requeued']} in a model call), "
              f"host killed with SIGKILL (filled in {x['fill_s']:.1f} s)")
        print(f"    Runtime.open (recovery + queue loaded): {x['open_s']:.2f} s; first model call "
              f"dispatched after {x['dispatch_s']:.2f} s; every session queued: {every}")
    if "memory" in a.parts:
        x = _in_fresh("memory", str(parents))
        print(f"  memory: {x['sessions']} sessions, {x['waiting']} waiting")
        print(f"    RSS {x['rss_mib']:.0f} MiB (peak {x['peak_rss_mib']:.0f} MiB); threads {x['threads']} "
              f"(most seen at a commit: {x['peak_threads']})")
        print(f"    and once the host lists all {x['listed']} (Runtime.sessions, a SessionInfo each): "
              f"RSS {x['listed_rss_mib']:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
