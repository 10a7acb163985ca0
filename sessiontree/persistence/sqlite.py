"""The SQLite engine: everything the store needs to know that is SQLite's own.

One module per engine, behind the same :class:`~sessiontree.persistence.store.Store`
calls (DBOS keeps ``_sys_db_sqlite.py`` beside ``_sys_db_postgres.py``): how to connect
(WAL, ``synchronous``, busy timeout), how a transaction begins and ends on the raw
connection, which exceptions are the engine's, and which of them mean "this file is not
a store". A PostgreSQL engine is one more module like this one.

The SQL the transactions write is plain, portable SQL apart from ``INSERT OR IGNORE``
and ``WITHOUT ROWID`` (models), which a PostgreSQL engine translates.
"""

from __future__ import annotations

import contextlib
import sqlite3
from typing import Any

import peewee as pw

NAME = "sqlite"

ERRORS: tuple[type[BaseException], ...] = (pw.DatabaseError, sqlite3.DatabaseError)
"""What a failed statement or commit raises (through peewee or the raw connection)."""

BUSY_TIMEOUT_MS = 5000
"""How long a write waits for another connection's lock before it fails (and the
transaction is retried by its caller)."""


def connect(path: str, *, durable: bool) -> pw.Database:
    """A peewee database for ``path``, not yet connected. One shared connection, used
    under the store's lock; WAL so that readers in other processes never block us.
    ``durable`` is ``synchronous=FULL`` (survives power loss: an fsync a commit);
    otherwise ``NORMAL`` (survives the death of the process)."""
    return pw.SqliteDatabase(
        path,
        thread_safe=False,  # one shared connection, guarded by Store._lock
        check_same_thread=False,
        pragmas={
            "journal_mode": "wal",
            "synchronous": "full" if durable else "normal",
            "busy_timeout": BUSY_TIMEOUT_MS,
            "foreign_keys": 0,
        },
    )


def begin(conn: Any) -> None:
    conn.execute("BEGIN")  # plain BEGIN/COMMIT: one statement each, no wrapper


def commit(conn: Any) -> None:
    conn.execute("COMMIT")


def savepoint(conn: Any) -> None:
    """A transaction inside the open one (a commit group's member)."""
    conn.execute("SAVEPOINT member")


def release(conn: Any) -> None:
    conn.execute("RELEASE member")


def rollback_savepoint(conn: Any) -> None:
    """Undo a member's writes only; the group's transaction stays open."""
    conn.execute("ROLLBACK TO member")
    conn.execute("RELEASE member")


def rollback(conn: Any) -> None:
    """Roll back; harmless if SQLite already rolled back on its own (a full disk)."""
    with contextlib.suppress(sqlite3.Error):
        conn.execute("ROLLBACK")


def is_not_a_store(exc: BaseException) -> bool:
    """True if opening failed because the file is not a database, or is damaged."""
    text = str(exc)
    return "not a database" in text or "malformed" in text


def data_version(conn: Any) -> int:
    """SQLite's change counter for ``conn``: it moves when *another* connection commits
    (not on this connection's own writes); the control channel's watch reads it."""
    return int(conn.execute("PRAGMA data_version").fetchone()[0])
