"""A store written by an older schema opens and gains what is new (and loses what is retired)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sessiontree as st
from sessiontree.persistence import SCHEMA_VERSION

NEW_SESSION_COLUMNS = ("shutdown", "significant", "auto_shutdown", "child_max_restarts",
                       "child_period", "child_restart_log", "keep_open")
NEW_JOB_COLUMNS = ("input_hash", "input_seq")


def _as_version_1(db: Path) -> None:
    """Make the store look as version 1 wrote it: without this version's columns."""
    con = sqlite3.connect(db)
    for column in NEW_SESSION_COLUMNS:
        con.execute(f'ALTER TABLE session DROP COLUMN "{column}"')
    for column in NEW_JOB_COLUMNS:
        con.execute(f'ALTER TABLE job DROP COLUMN "{column}"')
    con.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    con.commit()
    con.close()


def test_a_version_1_store_is_upgraded_and_its_sessions_read_with_the_defaults(
    db_path: Path,
) -> None:
    provider = st.ScriptedProvider(lambda t: "done")
    with st.Runtime.open(db_path, providers=[provider]) as rt:
        old = rt.create_session("before the upgrade")
        rt.wait(old, timeout=10)
    _as_version_1(db_path)

    with st.Runtime.open(db_path, providers=[provider]) as rt:
        assert rt.session(old).summary == "done"
        new = rt.create_session("after the upgrade")
        assert rt.wait(new, timeout=10).state == "completed"
        rec = rt._store.session(old)
        assert (rec.shutdown, rec.significant, rec.auto_shutdown, rec.keep_open) == (
            5.0, False, "never", False)
        assert rt.jobs(old)[0].state == "completed"

    con = sqlite3.connect(db_path)
    assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (
        str(SCHEMA_VERSION),)
    columns = {r[1] for r in con.execute("PRAGMA table_info(session)")}
    con.close()
    assert set(NEW_SESSION_COLUMNS) <= columns


def test_a_version_3_store_loses_its_retired_indexes_and_its_queries_still_answer(
    db_path: Path,
) -> None:
    provider = st.ScriptedProvider(lambda t: "done")
    with st.Runtime.open(db_path, providers=[provider]) as rt:
        rt.wait(rt.create_session("before the upgrade"), timeout=10)
    con = sqlite3.connect(db_path)  # as version 3 wrote it: two more indexes
    con.execute('CREATE UNIQUE INDEX "eventrow_event_id" ON "event" ("event_id")')
    con.execute('CREATE INDEX "sessionrow_state" ON "session" ("state")')
    con.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    con.commit()
    con.close()

    with st.Runtime.open(db_path, providers=[provider]) as rt:
        rt.wait(rt.create_session("after the upgrade"), timeout=10)
        everything = rt.events()
        middle = everything[len(everything) // 2].ts
        assert rt.events(since=middle) == [e for e in everything if e.ts >= middle]
        assert rt.events(until=middle) == [e for e in everything if e.ts < middle]
        assert len(rt.sessions(states=["completed"])) == 2

    con = sqlite3.connect(db_path)
    indexes = {r[1] for t in ("event", "session") for r in con.execute(f"PRAGMA index_list({t})")}
    version = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    con.close()
    assert not {"eventrow_event_id", "sessionrow_state"} & indexes and version == (str(SCHEMA_VERSION),)
