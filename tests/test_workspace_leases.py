"""Path leases: reads share, writes exclude, a conflict is decided at once and names
the holder; leases end with their session and with their host."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import sessiontree as st
from sessiontree._clock import ManualClock
from sessiontree._reasons import Reason
from sessiontree._states import SessionState
from sessiontree.actors.ending import end_session
from sessiontree.persistence import lease, open_store
from sessiontree.persistence import workspace as rows
from sessiontree.persistence.store import Store
from sessiontree.persistence.workspace import PathLease
from sessiontree.workspace import leasing

WS = "/work/space"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    s = open_store(db_path, clock=ManualClock(1000.0))
    yield s
    s.close()


def session(store: Store, role: str) -> str:
    with store.transaction() as tx:
        record, _ = tx.create_session(role=role, provider="p", model="m",
                                      budget=st.Budget(model_runs=5), enqueue=False)
    return record.id


def held(pattern: str, mode: str, sid: str = "ses_other", expires: float | None = None,
         owner: str | None = None) -> PathLease:
    return PathLease(1, WS, pattern, sid, mode, owner, 0.0, expires)


@pytest.mark.parametrize(("lease_mode", "wanted", "pattern", "path", "conflicts"), [
    ("read", "read", "a.txt", "a.txt", False),
    ("read", "write", "a.txt", "a.txt", True),
    ("write", "read", "a.txt", "a.txt", True),
    ("write", "write", "a.txt", "a.txt", True),
    ("write", "write", "a.txt", "b.txt", False),
    ("write", "write", "src/**", "src/x/y.py", True),
    ("write", "write", "src/*.py", "src/**/*.md", False),
    ("write", "read", "**", "anything", True),
])
def test_conflict_table(lease_mode: str, wanted: str, pattern: str, path: str, conflicts: bool) -> None:
    found = leasing.conflict("ses_me", path, wanted, [held(pattern, lease_mode)], now=10.0, owner_id=None)
    assert (found is not None) is conflicts


def test_own_expired_and_other_hosts_leases_never_conflict() -> None:
    leases = [held("a", "write", sid="ses_me"), held("a", "write", expires=5.0),
              held("a", "write", owner="dead-host")]
    assert leasing.conflict("ses_me", "a", "write", leases, now=10.0, owner_id=None) is None


def test_a_write_to_a_path_another_session_leased_fails_at_once_naming_the_holder(store: Store) -> None:
    alice, bob = session(store, "alice"), session(store, "bob")
    assert leasing.acquire(store, alice, WS, ["notes.md"], "write") == ["notes.md"]
    assert leasing.acquire(store, alice, WS, ["notes.md"], "write") == []  # already hers
    with pytest.raises(st.WorkspaceConflict) as refused:
        leasing.acquire(store, bob, WS, ["notes.md"], "write")
    err = refused.value
    assert (err.kind, err.path, err.holder_session_id, err.holder_role, err.lease_mode) == (
        "lease", "notes.md", alice, "alice", "write")
    assert err.reason == st.Reason.WORKSPACE_CONFLICT
    assert f"session {alice} (role alice)" in str(err)
    [event] = store.events(session_id=bob, type_prefix="FR-EVT-SESS-WORKSPACE-CONFLICT")
    assert event.payload["holder_session_id"] == alice and event.payload["lease_mode"] == "write"
    assert [x.session_id for x in rows.leases(store, workspace=WS)] == [alice]


def test_reads_share_and_a_read_lease_keeps_writers_out(store: Store) -> None:
    alice, bob, carol = session(store, "a"), session(store, "b"), session(store, "c")
    leasing.acquire(store, alice, WS, ["docs/**"], "read")
    leasing.acquire(store, bob, WS, ["docs/intro.md"], "read")
    with pytest.raises(st.WorkspaceConflict) as refused:
        leasing.acquire(store, carol, WS, ["docs/intro.md"], "write")
    assert refused.value.holder_session_id == alice and refused.value.lease_mode == "read"


def test_all_or_nothing_a_refused_request_leases_none_of_its_paths(store: Store) -> None:
    alice, bob = session(store, "a"), session(store, "b")
    leasing.acquire(store, alice, WS, ["b.txt"], "write")
    with pytest.raises(st.WorkspaceConflict):
        leasing.acquire(store, bob, WS, ["a.txt", "b.txt"], "write")
    assert [x.pattern for x in rows.leases(store, session_id=bob)] == []


def test_an_expired_lease_no_longer_holds_the_path(store: Store) -> None:
    alice, bob = session(store, "a"), session(store, "b")
    leasing.acquire(store, alice, WS, ["a.txt"], "write", ttl=30.0)
    with pytest.raises(st.WorkspaceConflict):
        leasing.acquire(store, bob, WS, ["a.txt"], "write")
    clock = store.clock
    assert isinstance(clock, ManualClock)
    clock.advance(31.0)
    assert leasing.acquire(store, bob, WS, ["a.txt"], "write") == ["a.txt"]


@pytest.mark.parametrize("ending", [SessionState.COMPLETED, SessionState.CANCELLED, SessionState.FAILED])
def test_leases_are_freed_in_the_transaction_that_ends_the_session(
    store: Store, ending: SessionState,
) -> None:
    alice, bob = session(store, "a"), session(store, "b")
    leasing.acquire(store, alice, WS, ["a.txt", "src/**"], "write")
    with store.transaction() as tx:
        tx.set_state(alice, SessionState.QUEUED)
        tx.set_state(alice, SessionState.RUNNING)
        end_session(tx, alice, ending, Reason.COMPLETED)
    assert rows.leases(store, session_id=alice) == []
    [event] = store.events(session_id=alice, type_prefix="FR-EVT-SESS-WORKSPACE-RELEASED")
    assert event.payload == {"reason": f"session_{ending.value}", "patterns": ["a.txt", "src/**"]}
    assert leasing.acquire(store, bob, WS, ["src/x.py"], "write") == ["src/x.py"]


def test_a_new_store_owner_frees_the_leases_of_the_host_before_it(store: Store) -> None:
    alice, bob = session(store, "a"), session(store, "b")
    lease.acquire(store, "host-1", ttl=15.0)
    leasing.acquire(store, alice, WS, ["a.txt"], "write")
    assert rows.leases(store)[0].owner_id == "host-1"
    lease.release(store, "host-1")
    lease.acquire(store, "host-2", ttl=15.0)  # what Runtime.open does after a crash
    assert rows.leases(store) == []
    [event] = store.events(session_id=alice, type_prefix="FR-EVT-SESS-WORKSPACE-RELEASED")
    assert event.payload["reason"] == "host_changed"
    assert leasing.acquire(store, bob, WS, ["a.txt"], "write") == ["a.txt"]


ROUNDS = 200


@pytest.mark.timeout(120)
def test_two_threads_racing_for_one_path_exactly_one_wins_every_round(store: Store) -> None:
    sids = [session(store, "left"), session(store, "right")]
    barrier = threading.Barrier(2, timeout=10)
    outcomes: list[list[tuple[str, str | None]]] = [[], []]

    def racer(i: int) -> None:
        for n in range(ROUNDS):
            barrier.wait()
            try:
                leasing.acquire(store, sids[i], WS, [f"round-{n}.txt"], "write")
                outcomes[i].append(("won", None))
            except st.WorkspaceConflict as exc:
                outcomes[i].append(("refused", exc.holder_session_id))

    threads = [threading.Thread(target=racer, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=100)
    assert all(len(o) == ROUNDS for o in outcomes)
    for n in range(ROUNDS):
        (a, a_holder), (b, b_holder) = outcomes[0][n], outcomes[1][n]
        assert sorted((a, b)) == ["refused", "won"], n
        loser_holder = a_holder if a == "refused" else b_holder
        winner = sids[0] if a == "won" else sids[1]
        assert loser_holder == winner, n
