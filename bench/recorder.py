"""Flight Recorder queries on a store holding a million events, and what recording
costs the dispatch path.

    python bench/recorder.py [--events 1000000] [--trees 100] [--per-tree 20] [--repeat 5]
    python bench/recorder.py --cost [--sessions 200] [--repeat 5] [--profile]

Builds the store through the library's own write path (``Tx.create_session``,
``Tx.enqueue``, ``Tx.set_job``, ``Tx.event``: validated payloads, buffered, one INSERT
per chunk at commit): ``trees`` trees of ``per-tree`` sessions with ten jobs each, then
``events`` events spread over those sessions, 1,000 events a commit, one simulated
second apart, in ten phases: in phase p each session's job p runs and its events carry
it (a job's events fall in its life, as a run's do). Then
times each query the CLI and ``Runtime.events``/``Runtime.spans`` make (median of
``--repeat``), with the rows it returned and the plan SQLite chose for it.

``--cost`` runs ``bench/dispatch.py``'s three workloads (single-turn, 5-turn tool loop,
spawn) with the recorder doing its full work and with less of it, side by side: one
round of each mode in turn, each in a fresh interpreter, ``--repeat`` times (so the
machine's noise hits every mode alike), then medians and their ratios. The modes switch
parts of the recorder off *in the benchmark's process only* (see ``MODES``); ``off`` is
the minimum the store needs (the library reads no event back on these paths). Each
round also counts the process's CPU time and the bytes it wrote (``/proc/self/io``
``wchar``) a model_run: the bytes are the steady figure on a noisy machine.
``--profile`` then profiles the tool loop in full mode on every thread (cProfile, each
thread's CPU time) and prints the recorder's functions with their time a model_run.
For a sampled profile of one round on every thread: ``py-spy record -f raw --threads
-r 500 -o F -- python bench/recorder.py --cost-round full --only loop --sessions 300``,
then ``python bench/recorder.py --stacks F 1500 500`` sums it into the recorder's parts.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from sessiontree._budget import Budget  # noqa: E402
from sessiontree._states import JobState  # noqa: E402
from sessiontree.persistence import open_store, recorder  # noqa: E402
from sessiontree.persistence.store import Store  # noqa: E402
from sessiontree.testing import ManualClock  # noqa: E402

PER_COMMIT = 1000


def _payload(kind: str, i: int) -> dict[str, Any]:
    if kind == "FR-EVT-SESS-STATE":
        return {"from_state": "queued", "to_state": "running", "reason": None}
    if kind == "FR-EVT-SESS-MESSAGE":
        return {"seq": i, "role": "assistant", "artifact_hash": "a" * 64, "chain_hash": "c" * 64,
                "trust": "trusted"}
    if kind == "FR-EVT-SESS-USAGE":
        return {"run": {"input_tokens": 10}, "total": {"input_tokens": 10 * i}}
    if kind == "FR-EVT-SESS-TOOL-INTENT":
        return {"call_id": f"tc_{i}", "tool": "read_file", "effect": "read_only",
                "idempotency_key": "k", "attempt": 1}
    return {"attempt": 1, "provider": "scripted", "reservation": {}}


TYPES = ["FR-EVT-SESS-STATE", "FR-EVT-SESS-MESSAGE", "FR-EVT-SESS-USAGE",
         "FR-EVT-SESS-TOOL-INTENT", "FR-EVT-SESS-SCHED-DISPATCHED"]


def build(path: Path, events: int, trees: int, per_tree: int) -> tuple[Store, dict[str, Any]]:
    clock = ManualClock(start=1_700_000_000.0)
    store = open_store(path, clock=clock)
    rng = random.Random(1)
    sessions: list[tuple[str, str]] = []  # (session id, root id)
    with store.transaction() as tx:
        for _ in range(trees):
            root, _ = tx.create_session(role="root", provider="scripted", model="m",
                                        budget=Budget(), task="bench", enqueue=False)
            sessions.append((root.id, root.id))
            for _ in range(per_tree - 1):
                child, _ = tx.create_session(role="child", provider="scripted", model="m",
                                             budget=Budget(), parent=root, task="c", enqueue=False)
                sessions.append((child.id, root.id))
    jobs: dict[str, list[str]] = {}
    with store.transaction() as tx:  # real job rows: ten a session, one at a time
        for sid, _ in sessions:
            jobs[sid] = [tx.enqueue(sid).id for _ in range(10)]
    phases = 10  # in phase p each session's job p runs: its events fall in its life
    per_phase = -(-events // phases)
    started = time.perf_counter()
    written = 0
    while written < events:
        phase = written // per_phase
        if written % per_phase == 0:
            with store.transaction() as tx:
                for sid, _ in sessions:
                    if phase:
                        tx.set_job(jobs[sid][phase - 1], JobState.COMPLETED)
                    tx.set_job(jobs[sid][phase], JobState.RUNNING)
        clock.advance(1.0)
        with store.transaction() as tx:
            for _ in range(min(PER_COMMIT, events - written, per_phase - written % per_phase)):
                sid, _ = sessions[rng.randrange(len(sessions))]
                kind = TYPES[written % len(TYPES)]
                tx.event(kind, sid, jobs[sid][phase], _payload(kind, written))
                written += 1
    took = time.perf_counter() - started
    sid, root = sessions[len(sessions) // 2]
    facts = {"session": sid, "root": root, "job": jobs[sid][3], "write_s": took,
             "mid": 1_700_000_000.0 + events / PER_COMMIT / 2}
    return store, facts


def timed(fn: Callable[[], list[Any]], repeat: int) -> tuple[float, int]:
    times, rows = [], 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        rows = len(fn())
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000, rows


def plan(store: Store, filters: dict[str, Any]) -> str:
    conn = store.db.connection()
    ids = store._ids_at(conn, filters.get("since"), filters.get("until"))
    job = store._job_window(conn, filters["job_id"]) if "job_id" in filters else None
    rest = {k: v for k, v in filters.items() if k != "job_id"}
    sql, params = store.events_sql(**rest, ids=ids, job=job)
    rows = store.execute_raw_for_tests(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
    return "; ".join(str(r[-1]) for r in rows)


# -- what recording costs the dispatch path (--cost) ---------------------------------------------
MODES = {
    "full": "as shipped: each event validated against its schema and written, spans written",
    "unvalidated": "events written, each payload serialized by json.dumps (no schema)",
    "no-spans": "events as shipped, no span row (the span verbs do nothing)",
    "off": "no event row, no span row: the minimum the store needs",
}
WORKLOADS = ("single", "loop", "spawn")
SPAWN_ROOTS, SPAWN_CHILDREN = 10, 20


def _plain_json(event_type: str, payload: dict[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"),
                      default=lambda v: v.model_dump(mode="json"))


def _no_span(self: Any, *args: Any, **kwargs: Any) -> None:
    return None


def _no_event(self: Any, event_type: str, session_id: str | None, job_id: str | None,
              payload: dict[str, Any]) -> None:
    self.summary.events += 1  # a commit that only recorded still tells its listeners


def switch_off(mode: str) -> None:
    """Switch parts of the recorder off in this process (see ``MODES``)."""
    from sessiontree.persistence import txbase, txspans

    if mode == "unvalidated":
        txbase.payload_json = _plain_json  # type: ignore[assignment]
    if mode in ("no-spans", "off"):
        for verb in ("open_span", "close_span", "add_span_usage"):
            setattr(txspans.SpanTx, verb, _no_span)
    if mode == "off":
        txbase.TxBase.event = _no_event  # type: ignore[method-assign]


def _written() -> int:
    with open("/proc/self/io") as io:
        return next(int(line.split()[1]) for line in io if line.startswith("wchar:"))


def cost_round(mode: str, sessions: int, only: str | None = None) -> dict[str, float]:
    """One round of the three workloads in ``mode``: runs (children) a second, and the
    process's CPU time (all threads) and bytes written a model_run (a spawned child)."""
    import dispatch

    switch_off(mode)
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="sessiontree-cost-") as tmp:
        d = Path(tmp)
        for name, runs, fn in (
            ("single", sessions, lambda: dispatch.runs_per_second(d, sessions, 1)),
            ("loop", sessions * 5, lambda: dispatch.runs_per_second(d, sessions, 5)),
            ("spawn", SPAWN_ROOTS * SPAWN_CHILDREN,
             lambda: dispatch.children_per_second(d, SPAWN_ROOTS, SPAWN_CHILDREN)),
        ):
            if only not in (None, name):
                continue
            before, cpu = _written(), time.process_time()
            out[name] = fn()
            out[f"{name}_cpu"] = (time.process_time() - cpu) / runs * 1e6
            out[f"{name}_bytes"] = (_written() - before) / runs
    return out


def profile_loop(sessions: int) -> None:
    """The tool loop in full mode under cProfile on every thread; the recorder's share."""
    import cProfile
    import pstats

    import dispatch

    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()

    def start(*_: Any) -> None:  # each new thread's first profile event: profile it
        prof = cProfile.Profile(time.thread_time)  # CPU time: a thread blocked costs nothing
        with lock:
            profiles.append(prof)
        prof.enable()

    main_prof = cProfile.Profile(time.thread_time)
    profiles.append(main_prof)
    threading.setprofile(start)
    main_prof.enable()
    with tempfile.TemporaryDirectory(prefix="sessiontree-profile-") as tmp:
        rate = dispatch.runs_per_second(Path(tmp), sessions, 5)
    main_prof.disable()
    threading.setprofile(None)  # type: ignore[arg-type]
    runs = sessions * 5
    stats = pstats.Stats(*profiles)
    table: dict[tuple[str, int, str], tuple[int, float, float]] = {
        key: (nc, tt, ct) for key, (_, nc, tt, ct, _) in stats.stats.items()}  # type: ignore[attr-defined]

    def row(file_part: str, func: str) -> tuple[int, float, float]:
        found = [v for (f, _, n), v in table.items() if f.endswith(file_part) and n == func]
        return (sum(v[0] for v in found), sum(v[1] for v in found), sum(v[2] for v in found))

    print(f"\n  profile: tool loop, full mode, {runs} model_runs, every thread's CPU time "
          f"(cProfile, timer thread_time; {rate:.0f} runs/s under it). Per model_run:")
    print(f"  {'function':52s} {'calls':>6s} {'own us':>8s} {'incl. us':>9s}")
    for file_part, func in (
        ("persistence/txbase.py", "event"),
        ("persistence/events.py", "payload_json"),
        ("persistence/events.py", "_validated"),
        ("persistence/spans.py", "span_id"),
        ("persistence/txspans.py", "open_span"),
        ("persistence/txspans.py", "close_span"),
        ("persistence/txspans.py", "add_span_usage"),
        ("persistence/tx.py", "_run_span"),
        ("persistence/tx.py", "_job_span"),
        ("persistence/txspans.py", "flush"),
        ("persistence/txbase.py", "flush"),
        ("persistence/txbase.py", "_insert_rows"),
        ("persistence/sqlite.py", "commit"),
        ("persistence/store.py", "transaction"),
    ):
        calls, own, incl = row(file_part, func)
        if calls:
            print(f"  {file_part + ':' + func:52s} {calls / runs:6.1f} {own / runs * 1e6:8.1f} "
                  f"{incl / runs * 1e6:9.1f}")
    print("\n  the 15 functions with the most own time, per model_run:")
    top = sorted(table.items(), key=lambda kv: -kv[1][1])[:15]
    for (f, line, name), (calls, own, incl) in top:
        where = f"{Path(f).parent.name}/{Path(f).name}:{line} {name}" if line else name
        print(f"  {where[-52:]:52s} {calls / runs:6.1f} {own / runs * 1e6:8.1f} "
              f"{incl / runs * 1e6:9.1f}")


STACK_PARTS = [  # (what, a frame that marks it in a py-spy stack), first match wins
    ("event: payload validated + serialized (payload_json)",
     r"payload_json \(sessiontree/persistence/events.py"),
    ("event: the rest of Tx.event (ids, root, span id)", r"TxBase\.event \(sessiontree/"),
    ("event: INSERT of the buffered rows", r"TxBase\.flush \(sessiontree/persistence/txbase.py:274\)"),
    ("span: upsert at commit", r"SpanTx\.flush \(sessiontree/persistence/txspans.py:14[0-3]\)"),
    ("span: verbs (open, close, usage, run/job spans)",
     r"(open_span|close_span|add_span_usage|_run_span|_job_span|charge_run|take_run_usage) \("),
    ("COMMIT (WAL pages written, checkpoints)", r"(^|;)commit \(sessiontree/persistence/sqlite.py"),
]


def stack_parts(path: str, runs: int, rate: int) -> None:
    """Sum a py-spy raw profile (``py-spy record -f raw --threads -r RATE -- python
    bench/recorder.py --cost-round MODE --only loop --sessions N``) into the recorder's
    parts, in us of sampled time per model_run (``runs``: N x 5 for the loop)."""
    import re

    found = dict.fromkeys([what for what, _ in STACK_PARTS], 0)
    with open(path) as stacks:
        for line in stacks:
            stack, count = line.rsplit(" ", 1)
            for what, frame in STACK_PARTS:
                if re.search(frame, stack):
                    found[what] += int(count)
                    break
    for what, samples in found.items():
        print(f"  {what:52s} {samples / rate / runs * 1e6:8.1f} us a model_run")


def cost(sessions: int, repeat: int, profile: bool) -> int:
    rounds: dict[str, list[dict[str, float]]] = {m: [] for m in MODES}
    for _ in range(repeat):
        for mode in MODES:  # one round of each in turn: noise hits every mode alike
            out = subprocess.run(
                [sys.executable, __file__, "--cost-round", mode, "--sessions", str(sessions)],
                check=True, capture_output=True, text=True).stdout
            rounds[mode].append(json.loads(out.splitlines()[-1]))
    med = {m: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for m, rs in rounds.items()}
    print(f"sessiontree Flight Recorder cost on the dispatch path, median of {repeat} rounds "
          f"(python {sys.version.split()[0]}, {os.cpu_count()} cpus, load "
          f"{os.getloadavg()[0]:.1f})")
    for mode, what in MODES.items():
        print(f"  {mode:12s} {what}")
    labels = {"single": "model_runs/s, single-turn", "loop": "model_runs/s, 5-turn tool loop",
              "spawn": "children spawned+announced/s"}
    head = "".join(f"{m:>12s}" for m in MODES)
    print(f"\n  {'':32s}{head}   full/off   cost")
    for w in WORKLOADS:
        cells = "".join(f"{med[m][w]:12.0f}" for m in MODES)
        ratio = med["full"][w] / med["off"][w]
        print(f"  {labels[w]:32s}{cells}   {ratio:7.2f}x  {1 / ratio - 1:+6.0%}")
    for w in WORKLOADS:
        cells = "".join(f"{med[m][w + '_cpu']:12.0f}" for m in MODES)
        ratio = med["full"][w + "_cpu"] / med["off"][w + "_cpu"]
        unit = "CPU us a child" if w == "spawn" else f"CPU us a run, {w}"
        print(f"  {unit:32s}{cells}   {ratio:7.2f}x  {ratio - 1:+6.0%}")
    for w in WORKLOADS:
        cells = "".join(f"{med[m][w + '_bytes'] / 1024:12.1f}" for m in MODES)
        ratio = med["full"][w + "_bytes"] / med["off"][w + "_bytes"]
        unit = "KiB written a child" if w == "spawn" else f"KiB written a run, {w}"
        print(f"  {unit:32s}{cells}   {ratio:7.2f}x  {ratio - 1:+6.0%}")
    worst = max(med["off"][w] / med["full"][w] - 1 for w in WORKLOADS)
    cpu = max(med["full"][w + "_cpu"] / med["off"][w + "_cpu"] - 1 for w in WORKLOADS)
    print(f"\n  recorder cost, full against off, worst workload: {worst:+.0%} wall time a run, "
          f"{cpu:+.0%} CPU a run; target <= +10%: {'met' if max(worst, cpu) <= 0.10 else 'NOT met'}")
    if profile:
        profile_loop(sessions)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--per-tree", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cost", action="store_true", help="what recording costs dispatch")
    parser.add_argument("--sessions", type=int, default=200, help="with --cost")
    parser.add_argument("--profile", action="store_true", help="with --cost: cProfile it")
    parser.add_argument("--cost-round", choices=list(MODES),
                        help="one round in one mode, printed as JSON (e.g. under py-spy)")
    parser.add_argument("--only", choices=WORKLOADS, help="with --cost-round: one workload")
    parser.add_argument("--stacks", nargs=3, metavar=("FILE", "RUNS", "RATE"),
                        help="sum a py-spy raw profile of a round into the recorder's parts")
    args = parser.parse_args(argv)
    if args.stacks:
        stack_parts(args.stacks[0], int(args.stacks[1]), int(args.stacks[2]))
        return 0
    if args.cost_round:
        print(json.dumps(cost_round(args.cost_round, args.sessions, args.only)))
        return 0
    if args.cost:
        return cost(args.sessions, args.repeat, args.profile)
    with tempfile.TemporaryDirectory(prefix="sessiontree-recorder-") as tmp:
        path = Path(tmp) / "recorder.db"
        store, f = build(path, args.events, args.trees, args.per_tree)
        size = os.path.getsize(path) + os.path.getsize(str(path) + "-wal")
        print(f"sessiontree Flight Recorder queries, {args.events:,} events, "
              f"{args.trees * args.per_tree:,} sessions in {args.trees} trees "
              f"(python {sys.version.split()[0]}, median of {args.repeat})")
        print(f"  written through Tx.event in {f['write_s']:.1f}s "
              f"({args.events / f['write_s']:,.0f} events/s); store {size / 2**20:,.0f} MiB")
        mid = f["mid"]
        last = store.execute_raw_for_tests('SELECT MAX("id") FROM "event"').fetchone()[0]
        sched = "FR-EVT-SESS-SCHED-"
        queries: list[tuple[str, dict[str, Any]]] = [
            ("one session's events", {"session_id": f["session"]}),
            ("one tree's events (root)", {"root_id": f["root"]}),
            ("one job's events", {"job_id": f["job"]}),
            ("a 1 s time range", {"since": mid, "until": mid + 1}),
            ("session + type prefix", {"session_id": f["session"], "type_prefix": sched}),
            ("type prefix alone, first 100", {"type_prefix": sched, "limit": 100}),
            ("type prefix alone, all", {"type_prefix": sched}),
            ("tail: the last 100 (--follow)", {"after": last - 100}),
        ]
        print(f"  {'query':32s} {'ms':>9s} {'rows':>8s}  plan")
        for label, filters in queries:
            ms, rows = timed(lambda filters=filters: store.events(**filters), args.repeat)
            print(f"  {label:32s} {ms:9.2f} {rows:8d}  {plan(store, filters)}")
        ms, rows = timed(lambda: recorder.spans(store, root_id=f["root"]), args.repeat)
        print(f"  {'a tree of spans':32s} {ms:9.2f} {rows:8d}  span primary key (trace_id, span_id)")
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
