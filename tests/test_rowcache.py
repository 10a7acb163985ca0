"""The row cache of the store's one writer: it holds what was committed, never what a
rolled-back transaction wrote, and an observer in another process never uses one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import sessiontree as st
from sessiontree._budget import Budget
from sessiontree.persistence import open_store
from sessiontree.persistence.store import Store


@pytest.fixture
def writer(db_path: Path) -> Iterator[Store]:
    store = open_store(db_path)
    store.enable_row_cache()
    yield store
    store.close()


def _new_session(store: Store) -> str:
    with store.transaction() as tx:
        rec, job = tx.create_session(role="r", provider="p", model="m", budget=Budget(),
                                     task="t")
    assert job is not None
    return rec.id


def _selects(store: Store) -> list[str]:
    seen: list[str] = []
    store.db.connection().set_trace_callback(  # type: ignore[no-untyped-call]
        lambda sql: seen.append(sql) if sql.lstrip().upper().startswith("SELECT") else None)
    return seen


def test_a_committed_row_is_read_back_without_a_statement(writer: Store) -> None:
    sid = _new_session(writer)
    (job,) = writer.jobs(session_id=sid)
    seen = _selects(writer)
    with writer.transaction() as tx:
        tx.set_job(job.id, "running")
        tx.set_state(sid, st.SessionState.RUNNING)
    assert writer.session(sid).state == "running"
    assert writer.session(sid) is writer.session(sid)  # one record per committed version
    with writer.transaction() as tx:
        tx.fence(job.id, 1)  # raises JobFenced unless running at attempt 1
        assert tx.job(job.id).state == "running"
    assert seen == []


def test_a_rolled_back_transaction_leaves_the_cache_as_committed(writer: Store) -> None:
    sid = _new_session(writer)
    (job,) = writer.jobs(session_id=sid)
    assert writer.session(sid).state == "queued"
    with pytest.raises(RuntimeError), writer.transaction() as tx:
        tx.set_job(job.id, "running")
        tx.set_state(sid, st.SessionState.RUNNING)
        tx.charge(sid, st.Usage(input_tokens=7))
        raise RuntimeError("abandon")
    assert writer.session(sid).state == "queued"
    assert writer.session(sid).usage == st.Usage()
    with writer.transaction() as tx:
        assert tx.session(sid).state == "queued"
        assert tx.job(job.id).state == "queued"
    assert writer.turn_state(sid)[1].seq == writer.session(sid).checkpoint_seq


def test_a_failed_commit_leaves_the_cache_as_committed(writer: Store) -> None:
    sid = _new_session(writer)

    def fail(step: str) -> None:
        raise st.StoreError("disk gone")

    writer.fault_hook = fail
    with pytest.raises(st.StoreError), writer.transaction() as tx:
        tx.set_state(sid, st.SessionState.PAUSED, st.Reason.PAUSED)
    writer.fault_hook = None
    assert writer.session(sid).state == "queued"


def test_an_observer_reads_the_file_every_time(writer: Store, db_path: Path) -> None:
    sid = _new_session(writer)
    observer = open_store(db_path, create=False)
    try:
        assert observer.row_cache is None
        assert observer.session(sid).state == "queued"
        with writer.transaction() as tx:
            tx.set_state(sid, st.SessionState.PAUSED, st.Reason.PAUSED)
        assert observer.session(sid).state == "paused"
    finally:
        observer.close()


def test_raw_sql_drops_the_cache(writer: Store) -> None:
    sid = _new_session(writer)
    assert writer.session(sid).role == "r"
    writer.execute_raw_for_tests('UPDATE "session" SET "role" = ? WHERE "id" = ?', ("x", sid))
    assert writer.session(sid).role == "x"


def test_a_transaction_inside_a_transaction_is_refused(writer: Store) -> None:
    sid = _new_session(writer)
    with writer.transaction() as tx:
        tx.set_state(sid, st.SessionState.PAUSED, st.Reason.PAUSED)
        with pytest.raises(st.StoreError, match="already open"), writer.transaction():
            pass
    assert writer.session(sid).state == "paused"  # the outer one still commits


def test_records_read_back_are_whole_frozen_records(writer: Store) -> None:
    import dataclasses

    sid = _new_session(writer)
    (job,) = writer.jobs(session_id=sid)
    with writer.transaction() as tx:
        tx.add_tool_call(call_id="tc_1", session_id=sid, job_id=job.id, message_seq=1, idx=0,
                         tool="t", args={"a": 1}, effect="read_only")
    records = [writer.session(sid), job, writer.checkpoint(sid), *writer.tool_calls(sid)]
    for record in records:
        fields = {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}
        assert type(record)(**fields) == record  # every field, of the right value
        with pytest.raises(dataclasses.FrozenInstanceError):
            record.state = "x"  # type: ignore[misc]


def test_a_new_sessions_tokens_are_cached_from_the_commit_that_issued_them(writer: Store) -> None:
    """Kept per session: issuing or revoking another session's tokens keeps them, a
    revoke of its own drops them (and the next read sees the revoke)."""
    from sessiontree.persistence import capabilities

    def new_with(cap: str) -> str:
        with writer.transaction() as tx:
            rec, _ = tx.create_session(role="r", provider="p", model="m", budget=Budget(), task="t")
            capabilities.issue(tx, rec.id, [(cap, None, None)])
        return rec.id

    a = new_with("tool:a")
    seen = _selects(writer)
    (token,) = capabilities.read_tokens(writer, session_ids=[a])
    assert token.capability == "tool:a" and seen == []
    b = new_with("tool:b")
    with writer.transaction() as tx:
        (b_token,) = capabilities.read_tokens(writer, session_ids=[b])
        capabilities.revoke(tx, b_token.id, "test")
    seen.clear()
    assert capabilities.read_tokens(writer, session_ids=[a]) == [token] and seen == []
    with writer.transaction() as tx:
        capabilities.revoke(tx, token.id, "test")
    seen.clear()
    (after,) = capabilities.read_tokens(writer, session_ids=[a])
    assert after.revoked and len(seen) == 1
