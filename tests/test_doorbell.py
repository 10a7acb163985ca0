"""The control channel's doorbell: a writer that rings is answered once its command is
settled (at once if it already was), a ring makes the host look at once, and with no
host at the door a writer is told so instead of waiting."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from pathlib import Path

import pytest

from sessiontree.persistence import doorbell

pytestmark = pytest.mark.skipif(not doorbell.supported(), reason="no Unix sockets here")


class Host:
    """A doorbell with a settle switch the test turns, and a record of the rings."""

    def __init__(self, db: Path) -> None:
        self.settled_ids: set[str] = set()
        self.rung = threading.Event()
        self.bell = doorbell.Doorbell(str(db), self.rung.set, lambda cid: cid in self.settled_ids)

    def settle(self, command_id: str) -> None:
        self.settled_ids.add(command_id)
        self.bell.settled(command_id)


def _ring_in_thread(db: Path, command_id: str, timeout: float) -> tuple[threading.Thread, list[bool | None]]:
    out: list[bool | None] = []
    t = threading.Thread(target=lambda: out.append(doorbell.ring(str(db), command_id, timeout)))
    t.start()
    return t, out


def test_a_ring_is_answered_when_its_command_is_settled(tmp_path: Path) -> None:
    host = Host(tmp_path / "s.db")
    assert host.bell.start()
    try:
        t, out = _ring_in_thread(tmp_path / "s.db", "cmd_1", 30)
        assert host.rung.wait(30)  # the host was told to look now
        assert not out  # nothing settled yet: the writer still waits
        host.settle("cmd_1")
        t.join(30)
        assert out == [True]
    finally:
        host.bell.stop()


def test_a_ring_about_a_command_already_settled_is_answered_at_once(tmp_path: Path) -> None:
    host = Host(tmp_path / "s.db")
    host.settled_ids.add("cmd_2")
    assert host.bell.start()
    try:
        assert doorbell.ring(str(tmp_path / "s.db"), "cmd_2", 30) is True
    finally:
        host.bell.stop()


def test_a_ring_with_no_host_or_past_its_time_says_so(tmp_path: Path) -> None:
    assert doorbell.ring(str(tmp_path / "none.db"), "cmd_3", 5) is None  # nobody there
    host = Host(tmp_path / "s.db")
    assert host.bell.start()
    try:
        assert doorbell.ring(str(tmp_path / "s.db"), "cmd_4", 0.2) is False  # never settled
    finally:
        host.bell.stop()
    assert not os.path.exists(host.bell.path)  # the socket goes with the host
    assert doorbell.ring(str(tmp_path / "s.db"), "cmd_4", 5) is None


def test_a_stopping_host_closes_its_waiting_rings_unanswered(tmp_path: Path) -> None:
    host = Host(tmp_path / "s.db")
    assert host.bell.start()
    t, out = _ring_in_thread(tmp_path / "s.db", "cmd_5", 30)
    assert host.rung.wait(30)
    host.bell.stop()
    t.join(30)
    assert out == [None]


def test_a_stale_socket_left_by_a_killed_host_is_replaced(tmp_path: Path) -> None:
    path = doorbell.path_for(str(tmp_path / "s.db"))
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)
    stale.close()  # the file stays, nobody listens: what a kill -9 leaves
    host = Host(tmp_path / "s.db")
    assert host.bell.start()
    try:
        host.settled_ids.add("cmd_6")
        assert doorbell.ring(str(tmp_path / "s.db"), "cmd_6", 30) is True
    finally:
        host.bell.stop()


def test_garbage_at_the_door_is_dropped_and_the_door_stays_open(tmp_path: Path) -> None:
    host = Host(tmp_path / "s.db")
    assert host.bell.start()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(host.bell.path)
            s.sendall(b"x" * 5000)  # no newline, far too long: not a command id
            s.settimeout(30)
            with contextlib.suppress(ConnectionResetError):  # reset: our bytes left unread
                assert s.recv(16) == b""  # closed on us
        host.settled_ids.add("cmd_7")
        assert doorbell.ring(str(tmp_path / "s.db"), "cmd_7", 30) is True
    finally:
        host.bell.stop()
