"""The Flight Recorder: a complete catalogue, every type written by real code paths,
``model_session_id`` and ``job_id`` on the events they concern, queries that filter.

The catalogue test runs the library's real paths (``recorder_scenarios``: a tree with
spawns and tools, a rejected spawn, a denied tool, a budget running out, a crash and its
restart, a cancel, a process death and its recovery, a side effect held for an operator
and resolved, a group restart and a supervisor giving up, a significant child, an
operator's retry, a provider cooling down, capability tokens expiring and revoked,
consent asked, granted, denied and revoked, worktrees merged and in conflict, the store
file replaced under its host, a host event, a compaction) and checks that together they
wrote every registered type but those whose producing feature is not built yet
(``events.NOT_YET_EMITTED``), each payload fitting its schema.
"""

from __future__ import annotations

import contextlib
import io
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st_
from recorder_scenarios import SCENARIOS, WAIT

import sessiontree as st
from sessiontree.console import demo as demo_module
from sessiontree.console.cli import main
from sessiontree.persistence.events import EVENT_SCHEMAS, NOT_YET_EMITTED, validate_payload
from sessiontree.persistence.storereads import StoreReads


@pytest.fixture(scope="module")
def emitted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[st.EventInfo]]:
    base = tmp_path_factory.mktemp("catalogue")
    return {s.__name__: s(base / f"{s.__name__}.db") for s in SCENARIOS}


# -- the catalogue --------------------------------------------------------------------------
def test_real_code_paths_write_every_registered_type_each_payload_fitting_its_schema(
    emitted: dict[str, list[st.EventInfo]],
) -> None:
    events = [e for found in emitted.values() for e in found]
    seen = {e.type for e in events}
    assert seen - set(EVENT_SCHEMAS) == set(), "a type written that the catalogue does not register"
    never = set(EVENT_SCHEMAS) - set(NOT_YET_EMITTED) - seen
    assert never == set(), f"registered types no scenario wrote: {sorted(never)}"
    for e in events:  # as stored and read back: valid, and nothing the schema would add or drop
        assert validate_payload(e.type, e.payload) == e.payload, e
    # every event names its session but the one about the store file itself, and a
    # command refused because its target names no session
    unnamed = [e for e in events if e.model_session_id is None]
    assert {e.type for e in unnamed} == {"FR-EVT-SESS-STORE-LOST", "FR-EVT-SESS-CONTROL-REFUSED"}
    assert all(e.payload["target"] == "s_nobody" for e in unnamed
               if e.type == "FR-EVT-SESS-CONTROL-REFUSED")


def test_types_awaiting_their_feature_are_registered_and_never_written(
    emitted: dict[str, list[st.EventInfo]],
) -> None:
    assert set(NOT_YET_EMITTED) <= set(EVENT_SCHEMAS)
    assert not set(NOT_YET_EMITTED) & {e.type for found in emitted.values() for e in found}


def test_the_catalogue_names_every_type_the_issue_lists() -> None:
    sess = ["CREATED", "STATE", "MESSAGE", "CHECKPOINT", "CRASHED", "RESTARTED", "RECOVERED",
            "COMPLETED", "FAILED", "CANCELLED", "PAUSED", "RESUMED", "BUDGET-EXCEEDED",
            "TOOL-INTENT", "TOOL-RESULT", "TOOL-DENIED", "CONSENT-REQUESTED",
            "CONSENT-GRANTED", "CONSENT-DENIED", "WORKSPACE-CONFLICT"]
    sched = ["ENQUEUED", "DISPATCHED", "COMPLETED", "FAILED", "CANCELLED", "RETRIED", "THROTTLED"]
    spawn = ["REQUESTED", "ACCEPTED", "REJECTED", "ANNOUNCED"]
    wanted = ([f"FR-EVT-SESS-{t}" for t in sess] + [f"FR-EVT-SESS-SCHED-{t}" for t in sched]
              + [f"FR-EVT-SESS-SPAWN-{t}" for t in spawn])
    assert set(wanted) <= set(EVENT_SCHEMAS)


def test_every_catalogue_entry_has_a_family_a_description_and_a_schema() -> None:
    entries = st.event_catalog()
    assert [e.type for e in entries] == list(EVENT_SCHEMAS)
    for e in entries:
        assert e.type.startswith(e.family[:-1]), e
        assert e.description and e.payload_schema["type"] == "object", e
    families = {e.family for e in entries}
    assert families == {"FR-EVT-SESS-*", "FR-EVT-SESS-SCHED-*", "FR-EVT-SESS-SPAWN-*"}


def test_events_catalog_prints_every_type_with_its_fields() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["events", "--catalog"]) == 0
    text = out.getvalue()
    assert all(f"{name}  [" in text for name in EVENT_SCHEMAS)
    assert "      tool: string" in text and f"({len(EVENT_SCHEMAS)} event types)" in text
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["events", "--catalog", "--json"]) == 0
    assert [json.loads(line)["type"] for line in out.getvalue().splitlines()] == list(EVENT_SCHEMAS)


def test_a_host_event_with_a_bad_name_or_data_that_is_not_json_is_refused(db_path: Path) -> None:
    with st.Runtime.open(db_path, providers=[st.ScriptedProvider(lambda t: "ok")]) as rt:
        sid = rt.create_session("go", start=False)
        with pytest.raises(st.InvalidInput, match="FR-EVT-SESS-HOST"):
            rt.record_event(sid, "has spaces")
        with pytest.raises(st.InvalidInput, match="JSON"):
            rt.record_event(sid, "ok", {"when": object()})
        with pytest.raises(st.UnknownSession):
            rt.record_event("ses_nope", "ok")
        rt.record_event(sid, "deploy:step-1", {"n": 1})
        (event,) = rt.events(session_id=sid, type_prefix="FR-EVT-SESS-HOST")
        assert event.payload == {"name": "deploy:step-1", "data": {"n": 1}}


# -- correlation over a whole demo run ---------------------------------------------------------
@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, st.SessionInfo]:
    base = tmp_path_factory.mktemp("demo")
    root = demo_module.run_root(base / "demo.db", base / "ws", children=3, live=False,
                                echo=lambda _: None)
    assert root.state == "completed"
    return base / "demo.db", root


def all_events(db: Path) -> list[st.EventInfo]:
    with st.Runtime.open(db, setup=demo_module.setup) as rt:
        return rt.events()


def test_every_event_of_a_demo_run_names_its_session(demo_db: tuple[Path, st.SessionInfo]) -> None:
    db, _ = demo_db
    events = all_events(db)
    assert len(events) > 100
    assert all(e.model_session_id for e in events)


def test_every_event_written_during_a_run_carries_its_job(
    demo_db: tuple[Path, st.SessionInfo],
) -> None:
    db, root = demo_db
    events = all_events(db)
    without = [(e.type, e.model_session_id) for e in events if e.job_id is None]
    # Only the host's creation of the root comes before any run (with its tokens and
    # its workspace binding, written in the same transaction).
    assert sorted(without) == sorted([
        ("FR-EVT-SESS-CREATED", root.id), ("FR-EVT-SESS-MESSAGE", root.id),
        ("FR-EVT-SESS-CHECKPOINT", root.id), ("FR-EVT-SESS-STATE", root.id),
        ("FR-EVT-SESS-CAPABILITY-ISSUED", root.id), ("FR-EVT-SESS-WORKSPACE-BOUND", root.id)])
    for kind in ("FR-EVT-SESS-STATE", "FR-EVT-SESS-MESSAGE", "FR-EVT-SESS-USAGE"):
        assert sum(e.type == kind and e.job_id is not None for e in events) > 3


def test_one_trace_per_tree_and_each_event_in_a_span_of_it(
    demo_db: tuple[Path, st.SessionInfo],
) -> None:
    db, root = demo_db
    events = all_events(db)
    assert {e.trace_id for e in events} == {events[0].trace_id}
    with st.Runtime.open(db, setup=demo_module.setup) as rt:
        span_ids = {s.span_id for s in rt.spans(root_id=root.id)}
    assert {e.span_id for e in events} <= span_ids


def test_events_of_a_child_by_cli_are_only_that_childs(
    demo_db: tuple[Path, st.SessionInfo],
) -> None:
    db, root = demo_db
    with st.Runtime.open(db, setup=demo_module.setup) as rt:
        child = rt.children(root.id)[1].id
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["events", "--db", str(db), "--session", child, "--json"]) == 0
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert events and {e["model_session_id"] for e in events} == {child}
    assert {"FR-EVT-SESS-CREATED", "FR-EVT-SESS-COMPLETED",
            "FR-EVT-SESS-SPAWN-ANNOUNCED"} <= {e["type"] for e in events}


# -- queries ----------------------------------------------------------------------------------
def test_events_by_job_are_what_that_run_wrote(demo_db: tuple[Path, st.SessionInfo]) -> None:
    db, root = demo_db
    with st.Runtime.open(db, setup=demo_module.setup) as rt:
        job = rt.jobs(session_id=root.id)[0]
        by_job = rt.events(job_id=job.id)
        everything = rt.events()
    assert by_job == [e for e in everything if e.job_id == job.id]
    kinds = {e.type for e in by_job}
    assert {"FR-EVT-SESS-SCHED-DISPATCHED", "FR-EVT-SESS-MESSAGE",
            "FR-EVT-SESS-SPAWN-ACCEPTED"} <= kinds  # the spawns it asked for are its too


def test_events_by_root_time_range_type_and_limit_combine(
    demo_db: tuple[Path, st.SessionInfo],
) -> None:
    db, root = demo_db
    with st.Runtime.open(db, setup=demo_module.setup) as rt:
        everything = rt.events()
        assert rt.events(root_id=rt.children(root.id)[0].id) == everything  # any session of it
        middle = everything[len(everything) // 2].ts
        assert rt.events(since=middle) == [e for e in everything if e.ts >= middle]
        assert rt.events(until=middle) == [e for e in everything if e.ts < middle]
        sched = rt.events(type_prefix="FR-EVT-SESS-SCHED-", since=middle, limit=3)
        assert sched == [e for e in everything
                         if e.type.startswith("FR-EVT-SESS-SCHED-") and e.ts >= middle][:3]
        with pytest.raises(st.InvalidInput):
            rt.events(since="yesterday")  # type: ignore[arg-type]
        with pytest.raises(st.InvalidInput):
            rt.events(job_id=7)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(steps=st_.lists(st_.tuples(st_.integers(0, 3), st_.booleans()), min_size=0, max_size=40),
       at=st_.integers(-1, 130))
def test_a_time_bound_is_found_on_the_primary_key_even_across_removed_events(
    steps: list[tuple[int, bool]], at: int,
) -> None:
    """``_first_id_at``: the least id from which on every event is at or after ``at``,
    by binary search over ids that grow with time and have holes (compaction)."""
    con = sqlite3.connect(":memory:")
    con.execute('CREATE TABLE "event" ("id" INTEGER PRIMARY KEY, "ts" REAL)')
    ts, kept = 0, []
    for rowid, (advance, removed) in enumerate(steps, start=1):
        ts += advance
        if not removed:
            con.execute('INSERT INTO "event" VALUES (?, ?)', (rowid, float(ts)))
            kept.append((rowid, ts))
    bound = StoreReads._first_id_at(con, float(at))
    after = [rowid for rowid, t in kept if t >= at]
    if not after:
        assert bound is None
    else:
        assert bound is not None
        assert [rowid for rowid, _ in kept if rowid >= bound] == after


def test_finding_a_time_bound_never_scans_the_event_table() -> None:
    """Each statement of the search seeks the primary key (a MIN and a MAX in one
    SELECT would have read every event)."""
    con = sqlite3.connect(":memory:")
    con.execute('CREATE TABLE "event" ("id" INTEGER PRIMARY KEY, "ts" REAL)')
    con.executemany('INSERT INTO "event" VALUES (?, ?)', [(i, float(i)) for i in range(1, 500)])
    seen: list[str] = []
    con.set_trace_callback(seen.append)
    assert StoreReads._first_id_at(con, 250.0) == 250
    con.set_trace_callback(None)
    plans = [row[3] for sql in set(seen)
             for row in con.execute("EXPLAIN QUERY PLAN " + sql.replace("?", "0"))]
    assert plans and "SCAN event" not in plans, plans


def test_events_follow_prints_a_live_tree_and_stops_when_it_ends(tmp_path: Path) -> None:
    import subprocess
    import sys

    db = tmp_path / "live.db"
    with st.Runtime.open(db, providers=[st.ScriptedProvider(lambda t: "done")]) as rt:
        sid = rt.create_session("later", start=False)
        err_path = tmp_path / "follower.err"
        with err_path.open("w") as err_file:
            follower = subprocess.Popen(
                [sys.executable, "-c",
                 "from sessiontree.console.cli import main; raise SystemExit(main())",
                 "events", "--db", str(db), "--follow", "--until-done", "--json", "--poll", "0.02"],
                stdout=subprocess.PIPE, stderr=err_file, text=True)
        assert follower.stdout is not None
        first = json.loads(follower.stdout.readline())  # printed while the tree is live
        assert (first["type"], first["model_session_id"]) == ("FR-EVT-SESS-CREATED", sid)
        assert rt.session(sid).state == "created"
        rt.enqueue(sid)
        rt.wait(sid, timeout=WAIT)
        rest = follower.stdout.read()  # to the end: the follower stops by itself
        follower.wait(timeout=30)
        stored = [e.as_json() for e in rt.events()]
    err = err_path.read_text()
    assert follower.returncode == 0, err
    printed = [first] + [json.loads(line) for line in rest.splitlines()]
    assert printed == stored
    assert printed[-1]["type"] in ("FR-EVT-SESS-COMPLETED", "FR-EVT-SESS-CHECKPOINT")


def test_events_cli_filters_by_root_job_time_and_limit(demo_db: tuple[Path, st.SessionInfo]) -> None:
    db, root = demo_db
    with st.Runtime.open(db, setup=demo_module.setup) as rt:
        child = rt.children(root.id)[2].id
        job = rt.jobs(session_id=child)[1].id
        everything = [e.as_json() for e in rt.events()]
        by_job = [e.as_json() for e in rt.events(job_id=job)]
    middle = everything[len(everything) // 2]["ts"]

    def run(*argv: str) -> list[dict[str, Any]]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(["events", "--db", str(db), "--json", *argv]) == 0
        return [json.loads(line) for line in out.getvalue().splitlines()]

    assert run("--root", child) == everything
    assert run("--job", job) == by_job and by_job
    assert run("--since", str(middle), "--limit", "5") == [
        e for e in everything if e["ts"] >= middle][:5]
    assert run("--until", str(middle)) == [e for e in everything if e["ts"] < middle]
