"""The owner lease: a store used by a live process is never recovered by a second one.

The holder refreshes a heartbeat; a second ``Runtime.open`` is refused with
``StoreInUse`` while the lease is fresh. On the same host a dead holder's lease is free
at once (its pid is gone), so recovery after ``kill -9`` need not wait; on another host
it is free once its heartbeat is older than the TTL.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import sessiontree as st
from sessiontree.persistence import open_store

WAIT = 10.0

HOLDER = """
import sys
import sessiontree as st

rt = st.Runtime.open(sys.argv[1], providers=[st.ScriptedProvider(lambda t: "ok")], lease_ttl=3600)
print("ready", flush=True)
sys.stdin.readline()
rt.close()
print("closed", flush=True)
"""


class Holder:
    """Another process holding the store open until told to close (or killed)."""

    def __init__(self, db: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(db)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "ready"

    def close(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "closed"
        assert self.proc.wait(WAIT) == 0

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        assert self.proc.wait(WAIT) == -signal.SIGKILL


@pytest.fixture
def holder(db_path: Path) -> Iterator[Holder]:
    h = Holder(db_path)
    yield h
    if h.proc.poll() is None:
        h.proc.kill()
        h.proc.wait(WAIT)
    for pipe in (h.proc.stdin, h.proc.stdout):
        if pipe is not None:
            pipe.close()


def open_rt(db: Path, *, lease_ttl: float = 3600) -> st.Runtime:
    return st.Runtime.open(db, providers=[st.ScriptedProvider(lambda t: "ok")], lease_ttl=lease_ttl)


def owner(db: Path) -> tuple[Any, ...]:
    store = open_store(db)
    try:
        return tuple(store.execute_raw_for_tests("SELECT pid, host FROM owner").fetchall())
    finally:
        store.close()


def test_a_store_held_by_a_live_process_is_refused_with_store_in_use(
    db_path: Path, holder: Holder,
) -> None:
    with pytest.raises(st.StoreInUse) as refused:
        open_rt(db_path)
    assert refused.value.facts["pid"] == holder.proc.pid
    assert refused.value.facts["host"] == socket.gethostname()
    assert refused.value.reason == st.Reason.STORE_IN_USE
    assert owner(db_path) == ((holder.proc.pid, socket.gethostname()),)


def test_a_holder_killed_with_sigkill_frees_the_store_at_once(
    db_path: Path, holder: Holder,
) -> None:
    holder.kill()
    started = time.monotonic()
    with open_rt(db_path, lease_ttl=3600) as rt:  # no wait for the TTL: its pid is gone
        assert time.monotonic() - started < 5
        assert owner(db_path) == ((os.getpid(), socket.gethostname()),)
        sid = rt.create_session("t")
        assert rt.wait(sid, timeout=WAIT).state == "completed"


def test_a_holder_that_closes_releases_the_store(db_path: Path, holder: Holder) -> None:
    holder.close()
    assert owner(db_path) == ()
    with open_rt(db_path):
        pass


def test_a_second_runtime_in_the_same_process_is_refused(db_path: Path) -> None:
    with open_rt(db_path), pytest.raises(st.StoreInUse):
        open_rt(db_path)


def test_a_fresh_lease_of_another_host_is_refused(db_path: Path) -> None:
    open_rt(db_path).close()
    store = open_store(db_path)
    store.execute_raw_for_tests(
        "INSERT INTO owner (id, owner_id, pid, host, proc_start, acquired_at, heartbeat_at) "
        "VALUES (1, 'them', 4242, 'elsewhere', '', ?, ?)", (time.time(), time.time()))
    store.close()

    with pytest.raises(st.StoreInUse) as refused:
        open_rt(db_path, lease_ttl=15)
    assert (refused.value.facts["host"], refused.value.facts["pid"]) == ("elsewhere", 4242)


def test_a_stale_lease_of_another_host_is_taken_after_its_ttl(db_path: Path) -> None:
    open_rt(db_path).close()
    store = open_store(db_path)
    store.execute_raw_for_tests(
        "INSERT INTO owner (id, owner_id, pid, host, proc_start, acquired_at, heartbeat_at) "
        "VALUES (1, 'them', 4242, 'elsewhere', '', ?, ?)", (time.time() - 100, time.time() - 100))
    store.close()

    with pytest.raises(st.StoreInUse):
        open_rt(db_path, lease_ttl=200)  # 100 s old: still fresh for a 200 s TTL
    with open_rt(db_path, lease_ttl=15):  # stale for a 15 s TTL: taken
        assert owner(db_path) == ((os.getpid(), socket.gethostname()),)


def test_the_holder_heartbeat_keeps_its_lease_fresh(db_path: Path) -> None:
    beats = threading.Semaphore(0)
    with open_rt(db_path, lease_ttl=0.3) as rt:  # heartbeat every 0.1 s
        rt._store.fault_hook = lambda step: beats.release()  # observes every commit
        for _ in range(3):
            assert beats.acquire(timeout=WAIT)
        rt._store.fault_hook = None
        (acquired, beat), = rt._store.execute_raw_for_tests(
            "SELECT acquired_at, heartbeat_at FROM owner").fetchall()
        assert beat > acquired
