"""The store file pulled from under a live host, and a WAL that cannot be replayed.

The lease heartbeat checks the store file's identity (``st_dev``, ``st_ino``); the
tests pace it with a ManualClock, so a beat happens exactly when they advance it.
"""

from __future__ import annotations

import logging
import os
import shutil
import struct
import subprocess
import sys
import threading
from concurrent.futures import Future
from pathlib import Path

import pytest

import sessiontree as st
from sessiontree.persistence import open_store
from sessiontree.testing import ManualClock

WAIT = 20.0
TTL = 15.0  # the heartbeat runs every TTL / 3 seconds of the heartbeat clock


def open_rt(db: Path, beat: ManualClock) -> st.Runtime:
    return st.Runtime.open(db, providers=[st.ScriptedProvider(lambda t: "done")],
                           heartbeat_clock=beat, lease_ttl=TTL)


def test_a_store_file_deleted_under_a_live_host_fails_every_later_call_with_store_lost(
    db_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    beat = ManualClock()
    with open_rt(db_path, beat) as rt:
        sid = rt.create_session("t")
        rt.wait(sid, timeout=WAIT)
        os.remove(db_path)
        with caplog.at_level(logging.ERROR, logger="sessiontree"):
            beat.advance(TTL / 3)  # one heartbeat, on this thread
        assert any("is gone" in r.getMessage() for r in caplog.records
                   if r.levelno == logging.ERROR)
        for call in (lambda: rt.create_session("t"), lambda: rt.wait(sid, timeout=1),
                     lambda: rt.session(sid), rt.events, rt.stats):
            with pytest.raises(st.StoreLost) as lost:
                call()
            assert lost.value.reason == st.Reason.STORE_LOST
            assert lost.value.facts["path"] == str(db_path)
    assert not db_path.exists()  # closing did not bring a file back


def test_a_store_file_replaced_under_a_live_host_is_detected_and_the_event_kept_in_ours(
    db_path: Path, tmp_path: Path,
) -> None:
    beat = ManualClock()
    moved = tmp_path / "moved.db"
    with open_rt(db_path, beat) as rt:
        sid = rt.create_session("t")
        rt.wait(sid, timeout=WAIT)
        os.replace(db_path, moved)
        db_path.write_bytes(b"someone else's file")
        beat.advance(TTL / 3)
        with pytest.raises(st.StoreReplaced) as replaced:
            rt.create_session("t")
        assert isinstance(replaced.value, st.StoreLost)
        assert replaced.value.facts["found"] != replaced.value.facts["expected"]
    assert db_path.read_bytes() == b"someone else's file"  # never written to
    store = open_store(moved, create=False)
    try:
        [event] = store.events(type_prefix="FR-EVT-SESS-STORE-LOST")
        assert (event.payload["problem"], event.payload["path"]) == ("replaced", str(db_path))
        assert [s.id for s in store.sessions()] == [sid]  # everything committed is kept
    finally:
        store.close()


def test_a_wait_in_progress_ends_with_store_lost_when_the_file_goes(db_path: Path) -> None:
    beat = ManualClock()
    with open_rt(db_path, beat) as rt:
        sid = rt.create_session("t", start=False)  # never ends on its own
        ended: Future[None] = Future()

        def waiter() -> None:
            try:
                rt.wait(sid)  # no timeout: only the lost store can end it
                ended.set_result(None)
            except BaseException as exc:
                ended.set_exception(exc)

        thread = threading.Thread(target=waiter)
        thread.start()
        os.remove(db_path)
        beat.advance(TTL / 3)
        with pytest.raises(st.StoreLost):
            ended.result(timeout=WAIT)
        thread.join(WAIT)


def test_a_run_in_flight_when_the_store_goes_is_stopped_not_retried(
    db_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    beat, calling, release = ManualClock(), threading.Event(), threading.Event()

    def stubborn(turn: st.ScriptTurn) -> str:  # ignores cancellation: returns when told
        calling.set()
        release.wait(WAIT)
        return "too late"

    rt = st.Runtime.open(db_path, providers=[st.ScriptedProvider(stubborn)],
                         heartbeat_clock=beat, lease_ttl=TTL)
    try:
        rt.create_session("t")
        assert calling.wait(WAIT)
        os.remove(db_path)
        beat.advance(TTL / 3)
        with caplog.at_level(logging.WARNING, logger="sessiontree"):
            release.set()  # its reply cannot be stored anywhere now: the session crashes
            assert rt._ctx.actor_threads.wait_idle(WAIT)  # its crash is told before this
            rt.close()  # the scheduler handles the crash before close's shutdown
    finally:
        rt.close()
    warnings = [r.getMessage() for r in caplog.records]
    assert any("ActorCrashed while closing" in w for w in warnings), warnings
    assert not any("retrying" in w for w in warnings), warnings


# -- a WAL that cannot be replayed ----------------------------------------------------------
def _frames(wal: Path) -> tuple[int, list[int]]:
    """Page size and the indexes of the commit frames of the WAL's current generation."""
    data = wal.read_bytes()
    page_size = struct.unpack(">I", data[8:12])[0]
    salts = data[16:24]
    frame = 24 + page_size
    commits = []
    for i in range((len(data) - 32) // frame):
        head = data[32 + i * frame: 32 + i * frame + 24]
        if head[8:16] == salts and struct.unpack(">I", head[4:8])[0]:
            commits.append(i)
    return page_size, commits


def _snapshot(db_path: Path, into: Path) -> Path:
    """Copy a live store (its file and WAL), as a kill -9 would leave it."""
    into.mkdir()
    shutil.copy(db_path, into / "store.db")
    shutil.copy(f"{db_path}-wal", into / "store.db-wal")
    return into / "store.db"


def test_a_commit_frame_torn_by_the_writers_death_is_not_reported_as_lost(
    db_path: Path, tmp_path: Path,
) -> None:
    """A kill between the two writes of a transaction's last frame (its header, then
    its page) leaves the header over a stale page: SQLite rejects that one frame, and
    the transaction it ends never returned from COMMIT. Nothing committed is lost, so
    nothing is reported (``persistence.wal``); the transactions before it read back."""
    with open_rt(db_path, ManualClock()) as rt:  # no heartbeat commits meanwhile
        ids: list[str] = []
        for i in range(4):  # one at a time: the first three end before the last commit
            ids.append(rt.create_session(f"task {i}"))
            rt.wait(ids[-1], timeout=WAIT)
        torn = _snapshot(db_path, tmp_path / "torn")
        damaged = _snapshot(db_path, tmp_path / "damaged")

    page_size, commits = _frames(Path(f"{torn}-wal"))
    last = commits[-1]
    assert last > commits[-2] + 1  # the last transaction has more than its commit frame
    with open(f"{damaged}-wal", "r+b") as fh:  # damage before its commit frame: reported
        fh.seek(32 + (commits[-2] + 1) * (24 + page_size) + 24 + page_size // 2)
        byte = fh.read(1)
        fh.seek(-1, os.SEEK_CUR)
        fh.write(bytes([byte[0] ^ 0xFF]))
    assert not st.verify_store(damaged).ok
    with open(f"{torn}-wal", "r+b") as fh:  # the page as an older generation left it
        fh.seek(32 + last * (24 + page_size) + 24)
        fh.write(bytes(range(256)) * (page_size // 256))

    report = st.verify_store(torn)
    assert report.ok, report.first_bad
    assert not Path(f"{torn}-wal.unreplayable").exists()
    store = open_store(torn, create=False)  # (a runtime would meet this process's lease)
    try:
        assert [store.session(sid).state for sid in ids[:-1]] == ["completed"] * 3
    finally:
        store.close()


def test_a_wal_that_cannot_be_replayed_is_reported_by_verify(db_path: Path, tmp_path: Path) -> None:
    with open_rt(db_path, ManualClock()) as rt:  # no heartbeat commits meanwhile
        for i in range(4):
            rt.wait(rt.create_session(f"task {i}"), timeout=WAIT)
        good = _snapshot(db_path, tmp_path / "good")
        bad = _snapshot(db_path, tmp_path / "bad")

    page_size, commits = _frames(Path(f"{bad}-wal"))
    assert len(commits) >= 4
    victim = commits[len(commits) // 2] + 1  # the first frame of a later transaction
    with open(f"{bad}-wal", "r+b") as fh:
        fh.seek(32 + victim * (24 + page_size) + 24 + page_size // 2)
        byte = fh.read(1)
        fh.seek(-1, os.SEEK_CUR)
        fh.write(bytes([byte[0] ^ 0xFF]))

    assert st.verify_store(good).ok
    report = st.verify_store(bad)
    assert not report.ok
    assert report.first_bad is not None and "cannot replay" in report.first_bad
    kept = Path(f"{bad}-wal.unreplayable")
    assert kept.exists()  # SQLite drops those frames on close: the damaged WAL is kept

    # Every later look at the store says so too, until someone deals with the copy.
    cli = subprocess.run([sys.executable, "-m", "sessiontree.console.cli", "verify", "--db",
                          str(bad)], capture_output=True, text=True, timeout=60)
    assert cli.returncode == 1, cli.stdout + cli.stderr
    assert str(kept) in cli.stdout
