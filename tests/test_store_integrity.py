"""The store: content-addressed, hash-chained, versioned, reopened the same."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import sessiontree as st
from sessiontree.persistence import canonical_bytes, content_hash, open_store


def _run_tree(db: Path) -> str:
    def policy(turn: st.ScriptTurn) -> st.ModelReply | str:
        if turn.role == "root" and turn.turn == 0:
            return st.reply("", st.call("spawn_session", role="c", task="a"),
                            st.call("wait_for_children"))
        return "done"

    with st.Runtime.open(db, providers=[st.ScriptedProvider(policy)]) as rt:
        root = rt.create_session("r", capabilities=["session.spawn"])
        rt.wait(root, timeout=20)
    return root


def test_canonical_json_does_not_depend_on_key_order() -> None:
    a = canonical_bytes({"b": 1, "a": [1, {"y": 2, "x": "é"}]})
    b = canonical_bytes({"a": [1, {"x": "é", "y": 2}], "b": 1})
    assert a == b == '{"a":[1,{"x":"é","y":2}],"b":1}'.encode()
    assert content_hash(a) == content_hash(b)


def test_the_message_chain_verifies_and_a_flipped_byte_is_named(db_path: Path) -> None:
    _run_tree(db_path)
    store = open_store(db_path, create=False)
    assert st.verify_store(store).ok
    [(digest, data)] = store.execute_raw_for_tests(
        'SELECT hash, data FROM artifact ORDER BY hash LIMIT 1').fetchall()
    flipped = bytes([data[0] ^ 0x01]) + bytes(data[1:])
    store.execute_raw_for_tests("UPDATE artifact SET data = ? WHERE hash = ?", (flipped, digest))
    report = st.verify_store(store)
    store.close()
    assert not report.ok and digest in (report.first_bad or "")


def test_a_tampered_chain_hash_is_caught(db_path: Path) -> None:
    _run_tree(db_path)
    store = open_store(db_path, create=False)
    store.execute_raw_for_tests("UPDATE message SET chain_hash = 'x' WHERE seq = 2")
    report = st.verify_store(store)
    store.close()
    assert not report.ok and "chain hash" in (report.first_bad or "")


def test_reopening_a_closed_store_gives_the_same_tree(db_path: Path) -> None:
    root = _run_tree(db_path)
    with st.Runtime.open(db_path, providers=[st.ScriptedProvider(lambda t: "x")]) as rt:
        first = [n.as_json() for n in rt.tree(root)]
        first_messages = [(m.seq, m.chain_hash) for m in rt.messages(root)]
    with st.Runtime.open(db_path, providers=[st.ScriptedProvider(lambda t: "x")]) as rt:
        assert [n.as_json() for n in rt.tree(root)] == first
        assert [(m.seq, m.chain_hash) for m in rt.messages(root)] == first_messages


def test_a_store_from_a_newer_schema_is_refused(db_path: Path) -> None:
    _run_tree(db_path)
    with sqlite3.connect(db_path) as con:
        con.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    with pytest.raises(st.SchemaVersionError) as info:
        st.Runtime.open(db_path)
    assert info.value.facts["found"] == 999


def test_a_file_that_is_not_a_store_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"definitely not sqlite " * 200)
    with pytest.raises(st.CorruptStore):
        st.Runtime.open(junk)


def test_a_second_runtime_on_a_store_in_use_is_refused(db_path: Path) -> None:
    with st.Runtime.open(db_path, providers=[st.ScriptedProvider(lambda t: "x")]), \
            pytest.raises(st.StoreInUse):
        st.Runtime.open(db_path)


def test_two_runtimes_on_two_stores_do_not_see_each_other(tmp_path: Path) -> None:
    p = st.ScriptedProvider(lambda t: "x")
    with st.Runtime.open(tmp_path / "a.db", providers=[p]) as a, \
            st.Runtime.open(tmp_path / "b.db", providers=[p]) as b:
        sa = a.create_session("in a")
        a.wait(sa, timeout=10)
        assert [n.session.id for n in a.tree()] == [sa]
        assert b.tree() == []
        with pytest.raises(st.UnknownSession):
            b.session(sa)


def test_keyed_tables_are_one_b_tree_each(db_path: Path) -> None:
    """WITHOUT ROWID: a row written is one B-tree written, not a table and a key index."""
    store = open_store(db_path)
    try:
        sql = dict(store.execute_raw_for_tests(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table'").fetchall())
    finally:
        store.close()
    for table in ("session", "job", "artifact", "message", "checkpoint", "tool_call"):
        assert sql[table].rstrip().endswith("WITHOUT ROWID"), table
