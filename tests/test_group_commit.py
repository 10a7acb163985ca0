"""Group commit (``persistence.groupcommit``): transactions of writers queued for the
store's lock share one engine commit, and nobody sees any of them before that commit.

Each test builds the interleaving it needs with events, and a writer "waiting for the
lock" is made to wait deterministically: it is counted (``CommitGroup.waiting``) and held
at a barrier before it takes the lock, so the order of the steps is fixed."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

import sessiontree as st
from sessiontree._budget import Budget, Usage
from sessiontree._errors import StoreError
from sessiontree.persistence import open_store
from sessiontree.persistence import sqlite as engine
from sessiontree.persistence.store import Store

TIMEOUT = 10


@pytest.fixture(autouse=True)
def no_straggler(monkeypatch: pytest.MonkeyPatch) -> None:
    """A member waits for the group's commit without committing it itself (except in
    the test of that), so each test decides who commits."""
    monkeypatch.setattr("sessiontree.persistence.store.STRAGGLER_WAIT", 60.0)


def _until(condition: object) -> None:
    done = threading.Event()
    for _ in range(TIMEOUT * 1000):
        if condition():  # type: ignore[operator]
            return
        done.wait(0.001)
    raise AssertionError("condition not reached")


@pytest.fixture
def writer(db_path: Path) -> Iterator[Store]:
    store = open_store(db_path, group_commit=True)  # a durable store's default
    store.enable_row_cache()
    yield store
    store.close()


def _new_session(store: Store) -> str:
    with store.transaction() as tx:
        rec, _ = tx.create_session(role="r", provider="p", model="m", budget=Budget(), task="t")
    return rec.id


def _committed_role(path: Path, session_id: str) -> str | None:
    """The session's role as another connection sees it: committed data only."""
    con = sqlite3.connect(path)
    try:
        row = con.execute('SELECT "role" FROM "session" WHERE "id" = ?', (session_id,)).fetchone()
    finally:
        con.close()
    return None if row is None else str(row[0])


def _first_writer_held_open(store: Store, body: object) -> tuple[Future[None], threading.Event]:
    """Start a writer whose body runs ``body(tx)``, with one more writer counted as waiting
    for the lock, so that it leaves its transaction open for the group. Returns its future
    and an event set once its body is done (it then waits for the group's commit)."""
    pool = ThreadPoolExecutor(1)
    body_done = threading.Event()

    def first() -> None:
        with store.transaction() as tx:
            body(tx)  # type: ignore[operator]
            store._group.waiting(+1)  # a writer is queued for the lock (see the callers)
        body_done.set()

    fut = pool.submit(first)
    pool.shutdown(wait=False)
    return fut, body_done


def test_two_queued_writers_share_one_commit_and_neither_is_seen_before_it(
        writer: Store, db_path: Path) -> None:
    a, b = _new_session(writer), _new_session(writer)
    commits_before = writer._group.commits
    fut_a, _ = _first_writer_held_open(writer, lambda tx: tx.update_session(a, role="first"))
    _until(lambda: writer._group.open or fut_a.done())
    # A's body is done and its writes applied, uncommitted: nobody else sees them --
    # not another connection, not a read of the writer's cache.
    assert _committed_role(db_path, a) == "r"
    assert writer.session(a).role == "r"
    assert not fut_a.done()  # A waits for the group's commit

    # B: the queued writer. It joins A's transaction and, finding nobody behind it, commits.
    writer._group.waiting(-1)
    with writer.transaction() as tx:
        assert tx.session(a).role == "first"  # it sees A's write (it commits with it)
        tx.update_session(b, role="second")
    fut_a.result(TIMEOUT)
    assert writer._group.commits == commits_before + 1
    con = sqlite3.connect(db_path)
    roles = dict(con.execute('SELECT "id", "role" FROM "session" WHERE "id" IN (?, ?)', (a, b)))
    con.close()
    assert roles == {a: "first", b: "second"}
    assert writer.session(a).role == "first" and writer.session(b).role == "second"


def test_a_reader_commits_the_open_group_before_it_reads(writer: Store, db_path: Path) -> None:
    sid = _new_session(writer)
    fut, _ = _first_writer_held_open(writer, lambda tx: tx.update_session(sid, role="x"))
    _until(lambda: writer._group.open or fut.done())
    try:
        assert _committed_role(db_path, sid) == "r"
        # a read through the lock must see only committed data: the open group is
        # committed first, so the reader sees the write, and the writer goes on
        assert [s.role for s in writer.sessions() if s.id == sid] == ["x"]
        assert _committed_role(db_path, sid) == "x"
        fut.result(TIMEOUT)
    finally:
        writer._group.waiting(-1)
    assert not writer._group.open


def test_a_member_nobody_commits_for_commits_its_group_itself(
        writer: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sessiontree.persistence.store.STRAGGLER_WAIT", 0.01)
    sid = _new_session(writer)
    fut, _ = _first_writer_held_open(writer, lambda tx: tx.update_session(sid, role="alone"))
    try:
        fut.result(TIMEOUT)  # the counted writer never comes: the straggler commits
    finally:
        writer._group.waiting(-1)
    assert writer.session(sid).role == "alone"


def test_a_joiner_that_fails_rolls_back_only_its_own_writes(writer: Store) -> None:
    a, b = _new_session(writer), _new_session(writer)
    fut, _ = _first_writer_held_open(writer, lambda tx: tx.update_session(a, role="kept"))
    _until(lambda: writer._group.open or fut.done())
    writer._group.waiting(-1)
    with pytest.raises(RuntimeError), writer.transaction() as tx:
        tx.update_session(b, role="lost")
        raise RuntimeError("the joiner's body fails")
    fut.result(TIMEOUT)
    assert writer.session(a).role == "kept"
    assert writer.session(b).role == "r"


def test_a_failed_group_commit_fails_every_member(
        writer: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = _new_session(writer), _new_session(writer)
    fut, _ = _first_writer_held_open(writer, lambda tx: tx.update_session(a, role="gone"))
    _until(lambda: writer._group.open or fut.done())
    real_commit = engine.commit

    def failing_commit(conn: object) -> None:
        raise sqlite3.OperationalError("disk I/O error (injected)")

    monkeypatch.setattr(engine, "commit", failing_commit)
    writer._group.waiting(-1)
    with pytest.raises(StoreError), writer.transaction() as tx:
        tx.update_session(b, role="gone too")
    with pytest.raises(StoreError):
        fut.result(TIMEOUT)
    monkeypatch.setattr(engine, "commit", real_commit)
    assert writer.session(a).role == "r" and writer.session(b).role == "r"
    with writer.transaction() as tx:  # the store goes on
        tx.update_session(a, role="after")
    assert writer.session(a).role == "after"


def test_a_joiner_reads_what_earlier_members_wrote_through_the_cache(writer: Store) -> None:
    """The joiner reads the group's rows and counters, not the (older) cache's."""
    sid = _new_session(writer)
    (job,) = writer.jobs(session_id=sid)

    def body(tx: object) -> None:
        tx.set_job(job.id, "running")  # type: ignore[attr-defined]
        tx.set_state(sid, st.SessionState.RUNNING)  # type: ignore[attr-defined]
        tx.on_job(job.id, sid, cause=True)  # type: ignore[attr-defined]
        tx.charge(sid, Usage(input_tokens=3, output_tokens=4, model_runs=1))  # type: ignore[attr-defined]

    fut, _ = _first_writer_held_open(writer, body)
    _until(lambda: writer._group.open or fut.done())
    writer._group.waiting(-1)
    with writer.transaction() as tx:
        assert tx.session(sid).state == "running"
        assert tx.job(job.id).state == "running"
        tx.fence(job.id, tx.job(job.id).attempt)  # the running job's attempt: not fenced
        total = tx.charge(sid, Usage(input_tokens=1, model_runs=1))
    fut.result(TIMEOUT)
    assert total.input_tokens == 4 and total.model_runs == 2
    assert writer.session(sid).usage == total


def test_the_writer_checkpoints_the_wal_from_a_thread_of_its_own(db_path: Path) -> None:
    """``persistence.checkpointer``: commits no longer checkpoint (the writer's own
    threshold is raised), the checkpointer's thread does, and leaves the log copied back."""
    store = open_store(db_path)
    try:
        store.enable_row_cache()
        store.start_checkpointer()
        checkpointer = store._checkpointer
        assert checkpointer is not None
        for _ in range(20):
            _new_session(store)
        _until(lambda: checkpointer.checkpoints > 0)  # the thread ran one on its own
        frames, copied = checkpointer.checkpoint() or (-1, -2)
        assert frames == copied  # nobody reads or writes meanwhile: all of it copied back
        (threshold,) = store.db.execute_sql("PRAGMA wal_autocheckpoint").fetchone()  # type: ignore[no-untyped-call]
        assert threshold > 1000
    finally:
        store.close()
    assert store._checkpointer is None and checkpointer.checkpoint() is None
