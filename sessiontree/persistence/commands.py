"""The control channel: operators' commands travel through the store to its host.

A command (who, what, which session, whether for its subtree, when) is a row of the
``command`` table, written by any process (``sessiontree pause --db ...``, the console)
with or without a live host. The host that holds the store applies every ``pending``
command in the order written and settles it ``applied`` or ``refused`` with an outcome
text; a store opened with commands pending applies them once its scheduler runs. A
command is settled once: a second application of the same row finds it settled and does
nothing.

How the host hears of a new command is the engine's business, kept behind
:class:`CommandWatch`: for SQLite, ``PRAGMA data_version`` on the host's own connection
changes when another connection committed, so every :data:`POLL_INTERVAL` the watch
asks that (no table is read) and reads the pending commands only when it changed; a
writer that rings the host's doorbell (``persistence.doorbell``) makes it look at once.
A PostgreSQL engine would ``LISTEN`` instead, behind the same class.

The ``pause`` table holds the sessions an operator paused (``supervision.pause``
decides what a pause does; this module only reads and writes the rows).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from sessiontree._errors import InvalidInput
from sessiontree._ids import new_id
from sessiontree.persistence import sqlite as engine

if TYPE_CHECKING:
    from sessiontree.persistence.store import Store
    from sessiontree.persistence.tx import Tx

log = logging.getLogger(__name__)

COMMAND_KINDS = ("cancel", "pause", "resume", "retry", "resolve", "consent", "revoke")
COMMAND_STATES = ("pending", "applied", "refused")

POLL_INTERVAL = 0.05
"""Seconds between two looks for a command written by another process. A look is one
``PRAGMA data_version`` under the store's lock (microseconds), so the watch costs the
host nothing measurable (``bench/console_overhead.py``), and a command is picked up
within this interval plus the time to apply the ones before it."""


@dataclass(frozen=True)
class Command:
    """One control, as written and (once settled) with its outcome."""

    id: str
    seq: int
    kind: str
    target: str
    subtree: bool
    args: dict[str, Any]
    by: str
    note: str | None
    created_at: float
    state: str
    outcome: str | None
    settled_at: float | None

    def as_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _command(row: Any) -> Command:
    return Command(row.id, row.seq, row.kind, row.target, bool(row.subtree), json.loads(row.args),
                   row.by, row.note, row.created_at, row.state, row.outcome, row.settled_at)


def write(
    store: Store, kind: str, target: str, *, subtree: bool = False,
    args: dict[str, Any] | None = None, by: str = "operator", note: str | None = None,
) -> Command:
    """Write a pending command; return it. Raises :class:`InvalidInput` for an unknown
    kind or a target that is not a non-empty str. Never applies anything itself."""
    if kind not in COMMAND_KINDS:
        raise InvalidInput(f"unknown command {kind!r}; one of {', '.join(COMMAND_KINDS)}")
    if not isinstance(target, str) or not target:
        raise InvalidInput("a command needs a target id")
    row = dict(id=new_id("cmd"), kind=kind, target=target, subtree=bool(subtree),
               args=json.dumps(args or {}, sort_keys=True), by=by, note=note,
               created_at=time.time(), state="pending", outcome=None, settled_at=None)
    cols = ", ".join(f'"{c}"' for c in row)
    with store.transaction() as tx:
        cur = tx._exec(f'INSERT INTO "command" ({cols}) VALUES ({", ".join("?" * len(row))})',
                       tuple(row.values()))
        seq = int(cur.lastrowid)
    return _command(SimpleNamespace(**row, seq=seq))


_SELECT = 'SELECT * FROM "command"'


def pending(store: Store) -> list[Command]:
    """Every command not yet settled, in the order written."""
    return [_command(r) for r in store._rows(
        _SELECT + ' WHERE "state" = ? ORDER BY "seq"', ("pending",))]


def get(store: Store, command_id: str) -> Command:
    """The command with that id; :class:`InvalidInput` if there is none."""
    rows = store._rows(_SELECT + ' WHERE "id" = ?', (command_id,))
    if not rows:
        raise InvalidInput(f"unknown command {command_id!r}")
    return _command(rows[0])


def recent(store: Store, limit: int = 20) -> list[Command]:
    """The latest ``limit`` commands, newest first."""
    return [_command(r) for r in store._rows(_SELECT + ' ORDER BY "seq" DESC LIMIT ?', (limit,))]


def settle(tx: Tx, command_id: str, state: str, outcome: str) -> bool:
    """Mark a pending command ``applied`` or ``refused``; False if it was settled already
    (then nothing changes). Commands carry wall-clock times (``time.time()``), whatever
    clock the store runs on, so that written-to-settled is a delay a person can read."""
    if state not in COMMAND_STATES[1:]:
        raise InvalidInput(f"a command settles applied or refused, not {state!r}")
    cur = tx._exec('UPDATE "command" SET "state" = ?, "outcome" = ?, "settled_at" = ? '
                   'WHERE "id" = ? AND "state" = ?',
                   (state, outcome, time.time(), command_id, "pending"))
    return bool(cur.rowcount)


def is_pending(tx: Tx, command_id: str) -> bool:
    row = tx._exec('SELECT "state" FROM "command" WHERE "id" = ?', (command_id,)).fetchone()
    return row is not None and row[0] == "pending"


# -- pauses -------------------------------------------------------------------------------
def add_pause(tx: Tx, session_id: str, by: str, note: str | None) -> bool:
    """Record ``session_id`` as paused; False if it already was."""
    cur = tx._exec('INSERT OR IGNORE INTO "pause" ("session_id", "by", "note", "since") '
                   'VALUES (?, ?, ?, ?)', (session_id, by, note, tx.now))
    return bool(cur.rowcount)


def remove_pause(tx: Tx, session_id: str) -> bool:
    """Forget a pause; False if the session was not paused."""
    return bool(tx._exec('DELETE FROM "pause" WHERE "session_id" = ?', (session_id,)).rowcount)


def paused_ids(store: Store) -> set[str]:
    """The sessions paused now (whatever their state: see ``supervision.pause``)."""
    return {r.session_id for r in store._rows('SELECT "session_id" FROM "pause"')}


# -- the watch ----------------------------------------------------------------------------
class CommandWatch:
    """Calls ``on_change()`` on its own thread when another process may have committed
    to the store (a command, most likely), at most every ``interval`` seconds.

    Guarantees: ``on_change`` never runs on two threads at once, never under the store's
    lock, and never after :meth:`stop` returned. An exception it raises is logged and the
    watch goes on."""

    def __init__(self, store: Store, on_change: Callable[[], object],
                 interval: float = POLL_INTERVAL) -> None:
        self._store = store
        self._on_change = on_change
        self._interval = interval
        self._stop = threading.Event()
        self._wake = threading.Event()  # set by stop() and poke()
        self._poked = False
        self._thread: threading.Thread | None = None
        self._seen: int | None = None

    def start(self) -> None:
        self._seen = self._version()
        self._thread = threading.Thread(target=self._run, name="sessiontree-commands", daemon=True)
        self._thread.start()

    def poke(self) -> None:
        """Look now, and call ``on_change`` whatever the version says (a writer rang:
        ``persistence.doorbell``)."""
        self._poked = True
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _version(self) -> int | None:
        try:
            with self._store._reading():
                return engine.data_version(self._store.db.connection())  # type: ignore[no-untyped-call]
        except Exception:  # a closed or lost store: the runtime is going away
            return None

    def _run(self) -> None:
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            poked, self._poked = self._poked, False
            version = self._version()
            if version is None or (version == self._seen and not poked):
                continue
            self._seen = version
            try:
                self._on_change()
            except Exception:
                log.exception("applying operator commands failed")
