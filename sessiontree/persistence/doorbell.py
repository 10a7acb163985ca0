"""The control channel's doorbell: a local socket by which a process that wrote a command
rings the host, and waits for the command to be settled, without polling.

The store stays the channel: a command is a row, its outcome is that row settled
(``persistence.commands``). The doorbell only carries two words, so that neither side
has to look again and again: the writer sends the command's id; the host applies its
pending commands at once (not at its watch's next look) and answers ``settled`` as soon
as that command is settled (at once if it already was). The writer then reads the
outcome from the store.

A writer that finds no doorbell (no live host, a host of an older version, a platform
without Unix sockets) says so (:func:`ring` returns None) and relies on the row alone.

The socket lives in the temporary directory under a name derived from the store's
real path (Unix socket paths are short). Only the host binds it, and only while it
holds the store's lease, so a file left by a killed host is stale: it is replaced.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import tempfile
import threading
from collections.abc import Callable

import blake3

log = logging.getLogger(__name__)

SETTLED = b"settled\n"
_MAX_ID = 256  # a command id is far shorter; a longer line is not one of ours
_READ_TIMEOUT = 5.0  # a writer that connects and says nothing is dropped after this


def path_for(store_path: str) -> str:
    """The doorbell's socket path for the store at ``store_path``."""
    digest = blake3.blake3(os.path.realpath(store_path).encode()).hexdigest()[:20]
    return os.path.join(tempfile.gettempdir(), f"sessiontree-{digest}.sock")


def supported() -> bool:
    return hasattr(socket, "AF_UNIX")


def ring(store_path: str, command_id: str, timeout: float) -> bool | None:
    """Ring the host of ``store_path`` about ``command_id`` and wait up to ``timeout``
    seconds for it to be settled: True once it is, False if the time ran out, None if
    no host answers the door (then nothing was waited for)."""
    if not supported():
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(min(timeout, _READ_TIMEOUT))
        try:
            sock.connect(path_for(store_path))
            sock.sendall(command_id.encode() + b"\n")
        except OSError:  # no socket, or nobody listening on it
            return None
        sock.settimeout(timeout)
        try:
            answer = _line(sock, len(SETTLED))
        except TimeoutError:
            return False
        except OSError:
            return None
        return answer == SETTLED if answer else None  # closed unanswered: the host left
    finally:
        sock.close()


def _line(sock: socket.socket, limit: int) -> bytes:
    """Bytes up to and including a newline, or what came before the peer closed or
    ``limit`` bytes passed (then with no newline at the end)."""
    data = b""
    while not data.endswith(b"\n") and len(data) <= limit:
        chunk = sock.recv(max(64, limit))
        if not chunk:
            break
        data += chunk
    return data


class Doorbell:
    """The host's side: accepts rings, calls ``on_ring()`` for each (apply commands
    now), and answers a ring once :meth:`settled` is called for its command, or at once
    if ``is_settled(command_id)`` already holds when it rings."""

    def __init__(self, store_path: str, on_ring: Callable[[], None],
                 is_settled: Callable[[str], bool]) -> None:
        self.path = path_for(store_path)
        self._on_ring = on_ring
        self._is_settled = is_settled
        self._lock = threading.Lock()
        self._waiting: dict[str, list[socket.socket]] = {}
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> bool:
        """Bind the socket and answer rings on a thread of its own; False (and no
        doorbell) where that cannot be done -- writers then rely on the row alone."""
        if not supported():
            return False
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)  # a killed host's: we hold the lease now
            listener.bind(self.path)
            listener.listen(16)
        except OSError as exc:
            listener.close()
            log.warning("no control doorbell at %s: %s", self.path, exc)
            return False
        self._listener = listener
        self._thread = threading.Thread(target=self._serve, name="sessiontree-doorbell",
                                        daemon=True)
        self._thread.start()
        return True

    def stop(self, timeout: float = 10.0) -> None:
        listener, self._listener = self._listener, None
        if listener is None:
            return
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)  # wakes the accept below
        listener.close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        with self._lock:
            waiting, self._waiting = self._waiting, {}
        for conns in waiting.values():
            for conn in conns:
                conn.close()  # unanswered: the writer reads the row

    def settled(self, command_id: str) -> None:
        """Answer whoever rang about ``command_id`` (it is settled in the store)."""
        with self._lock:
            conns = self._waiting.pop(command_id, [])
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.sendall(SETTLED)
            conn.close()

    def _serve(self) -> None:
        while (listener := self._listener) is not None:
            try:
                conn, _ = listener.accept()
            except OSError:
                return  # stopped
            try:
                self._take(conn)
            except Exception:
                log.exception("control doorbell: a ring failed")
                conn.close()

    def _take(self, conn: socket.socket) -> None:
        conn.settimeout(_READ_TIMEOUT)
        try:
            line = _line(conn, _MAX_ID)
        except OSError:
            conn.close()
            return
        command_id = line.strip().decode(errors="replace")
        if not line.endswith(b"\n") or not command_id:
            conn.close()
            return
        with self._lock:  # first registered, then checked: a settle in between is seen
            self._waiting.setdefault(command_id, []).append(conn)
        self._on_ring()
        if self._is_settled(command_id):
            self.settled(command_id)
