"""Retention (``compact``) never loses what must stay; an exported tree verifies anywhere."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest

import sessiontree as st
from sessiontree.console.cli import main
from sessiontree.testing import ManualClock

WAIT = 10.0
DAY = 86_400.0


def policy(turn: st.ScriptTurn) -> Any:
    if turn.role == "root":
        if turn.turn == 0:
            return st.reply("", st.call("spawn_session", role="worker", task="w"))
        if turn.turn == 1:
            return st.reply("", st.call("wait_for_children"))
    return f"{turn.role} done"


def cli(*argv: str | Path) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main([str(a) for a in argv])
    return code, out.getvalue()


def open_rt(db: Path, clock: ManualClock | None = None) -> st.Runtime:
    return st.Runtime.open(db, providers=[st.ScriptedProvider(policy)], clock=clock,
                           lease_ttl=3600)


def finished_tree(rt: st.Runtime) -> str:
    root = rt.create_session("go", capabilities=["session.spawn"])
    assert rt.wait(root, timeout=WAIT).state == "completed"
    return root


def counts(rt: st.Runtime, sid: str) -> tuple[int, int, int]:
    return (len(rt.events(session_id=sid)), len(rt.messages(sid)), len(rt.spans(session_id=sid)))


# -- retention --------------------------------------------------------------------------------
def test_keep_last_trims_ended_sessions_and_records_what_it_removed(db_path: Path) -> None:
    with open_rt(db_path) as rt:
        root = finished_tree(rt)
        live = rt.create_session("still here", start=False)
        before = {sid: counts(rt, sid) for sid in (root, live)}
        all_before = rt.events(session_id=root)
        report = rt.compact(st.RetentionPolicy(keep_last=3))

        (compacted,) = rt.events(session_id=root, type_prefix="FR-EVT-SESS-COMPACTED")
        kept = rt.events(session_id=root)
        assert kept[:-1] == all_before[-3:]  # the last three, then the record of the rest
        assert compacted.payload["removed"] == before[root][0] - 3 == sum(
            compacted.payload["types"].values())
        assert compacted.payload["policy"] == "keep_last=3"
        assert counts(rt, live) == before[live]  # a session that has not ended keeps all
        assert counts(rt, root)[1:] == before[root][1:]  # messages and spans untouched
        assert root in report.sessions and live not in report.sessions
        assert report.removed == sum(e.payload["removed"] for e in rt.events(
            type_prefix="FR-EVT-SESS-COMPACTED"))
    assert st.verify_store(st.persistence.open_store(db_path)).ok  # every chain verifies


def test_older_than_removes_only_trees_that_all_ended_long_enough_ago(db_path: Path) -> None:
    clock = ManualClock(start=1_000_000.0)
    with open_rt(db_path, clock) as rt:
        old = finished_tree(rt)
        clock.advance(10 * DAY)
        recent = finished_tree(rt)
        waiting = rt.create_session("queued forever", start=False)
        clock.advance(3 * DAY)
        recent_before = len(rt.events(root_id=recent))
        report = rt.compact(st.RetentionPolicy(older_than_days=7))

        assert set(report.sessions) == {s.id for s in rt.sessions(root_id=old)}
        assert [e.type for e in rt.events(root_id=old)] == ["FR-EVT-SESS-COMPACTED"] * 2
        assert len(rt.events(root_id=recent)) == recent_before
        assert rt.events(session_id=waiting)
        assert [m.role for m in rt.messages(old)][:1] == ["user"]  # history kept

        again = rt.compact(st.RetentionPolicy(older_than_days=0))
        assert "FR-EVT-SESS-COMPACTED" not in again.types  # the record is never removed
        assert waiting not in again.sessions


def test_dry_run_counts_and_removes_nothing(db_path: Path) -> None:
    with open_rt(db_path) as rt:
        root = finished_tree(rt)
        before = rt.events()
        report = rt.compact(st.RetentionPolicy(keep_last=0), dry_run=True)
        assert report.dry_run and report.removed == len(before)
        assert rt.events() == before
        assert root in report.sessions


def test_a_policy_needs_exactly_one_rule() -> None:
    with pytest.raises(ValueError):
        st.RetentionPolicy()
    with pytest.raises(ValueError):
        st.RetentionPolicy(older_than_days=1, keep_last=2)
    with pytest.raises(ValueError):
        st.RetentionPolicy(keep_last=-1)


def test_compact_cli_applies_the_policy_and_prints_what_it_removed(db_path: Path) -> None:
    with open_rt(db_path) as rt:
        root = finished_tree(rt)
    code, out = cli("compact", "--db", db_path, "--keep-last", "2", "--dry-run")
    assert code == 0 and out.startswith("would remove ")
    code, out = cli("compact", "--db", db_path, "--keep-last", "2")
    assert code == 0 and out.startswith("removed ") and "FR-EVT-SESS-STATE" in out
    with open_rt(db_path) as rt:
        assert len(rt.events(session_id=root)) == 3
    code, _ = cli("compact", "--db", db_path)
    assert code == 2  # a policy is required


def test_compact_cli_refuses_a_store_a_live_host_holds(db_path: Path) -> None:
    with open_rt(db_path):
        code, _ = cli("compact", "--db", db_path, "--keep-last", "2")
    assert code == 2


# -- export -------------------------------------------------------------------------------------
def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_an_exported_tree_holds_its_sessions_messages_events_and_spans_and_verifies(
    db_path: Path, tmp_path: Path,
) -> None:
    out = tmp_path / "tree.jsonl"
    with open_rt(db_path) as rt:
        root = finished_tree(rt)
        report = rt.export_tree(root, out)
        sessions = rt.sessions(root_id=root)
        n_events, n_spans = len(rt.events(root_id=root)), len(rt.spans(root_id=root))
        n_messages = sum(len(rt.messages(s.id)) for s in sessions)
    rows = lines(out)
    kinds = [r["kind"] for r in rows]
    assert kinds[0] == "header" and kinds[-1] == "end"
    assert report.counts == {k: kinds.count(k) for k in set(kinds) - {"end"}}
    assert (kinds.count("session"), kinds.count("message"), kinds.count("event"),
            kinds.count("span")) == (len(sessions), n_messages, n_events, n_spans)
    first = next(r for r in rows if r["kind"] == "message")
    assert first["body"] == {"role": "user", "content": "go"}
    verified = st.verify_export(out)
    assert verified.ok, verified.first_bad
    assert (verified.sessions, verified.events, verified.spans) == (len(sessions), n_events, n_spans)


def test_export_and_verify_by_cli_and_a_subtree_verifies_on_its_own(
    db_path: Path, tmp_path: Path,
) -> None:
    with open_rt(db_path) as rt:
        root = finished_tree(rt)
        (child,) = rt.children(root)
    whole, part = tmp_path / "whole.jsonl", tmp_path / "part.jsonl"
    code, out = cli("export", "--db", db_path, root, "--out", whole)
    assert code == 0 and f"exported tree {root}" in out
    code, out = cli("verify", "--export", whole)
    assert code == 0 and out.startswith("ok: ")
    assert cli("export", "--db", db_path, child.id, "--out", part)[0] == 0
    assert {r["id"] for r in lines(part) if r["kind"] == "session"} == {child.id}
    assert cli("verify", "--export", part)[0] == 0


@pytest.mark.parametrize("damage", ["body", "event", "truncate", "drop_message"])
def test_verify_names_what_is_wrong_in_a_damaged_export(
    db_path: Path, tmp_path: Path, damage: str,
) -> None:
    out = tmp_path / "tree.jsonl"
    with open_rt(db_path) as rt:
        rt.export_tree(finished_tree(rt), out)
    raw = out.read_text().splitlines()
    i = next(n for n, line in enumerate(raw) if json.loads(line)["kind"] == "message")
    if damage == "body":
        row = json.loads(raw[i])
        row["body"]["content"] = "forged"
        raw[i] = json.dumps(row)
    elif damage == "event":
        j = next(n for n, line in enumerate(raw) if json.loads(line)["kind"] == "event")
        raw[j] = raw[j].replace('"payload":{', '"payload":{"forged":1,')
    elif damage == "truncate":
        raw = raw[:-3]
    else:
        del raw[i]
    out.write_text("\n".join(raw) + "\n")
    report = st.verify_export(out)
    assert not report.ok and report.first_bad
    code, printed = cli("verify", "--export", out)
    assert code == 1 and printed.startswith("CORRUPT: ")
