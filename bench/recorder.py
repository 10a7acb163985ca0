"""Flight Recorder queries on a store holding a million events.

    python bench/recorder.py [--events 1000000] [--trees 100] [--per-tree 20] [--repeat 5]

Builds the store through the library's own write path (``Tx.create_session``,
``Tx.enqueue``, ``Tx.set_job``, ``Tx.event``: validated payloads, buffered, one INSERT
per chunk at commit): ``trees`` trees of ``per-tree`` sessions with ten jobs each, then
``events`` events spread over those sessions, 1,000 events a commit, one simulated
second apart, in ten phases: in phase p each session's job p runs and its events carry
it (a job's events fall in its life, as a run's do). Then
times each query the CLI and ``Runtime.events``/``Runtime.spans`` make (median of
``--repeat``), with the rows it returned and the plan SQLite chose for it.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--per-tree", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
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
