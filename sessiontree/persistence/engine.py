"""Opening a store: from a path or URL to a ready :class:`Store` (schema checked).

The one factory that picks the engine: SQLite paths and ``sqlite:///`` URLs today
(``persistence.sqlite``); a ``postgresql://`` URL will pick a PostgreSQL engine module.
"""

from __future__ import annotations

from pathlib import Path

from sessiontree._clock import Clock, SystemClock
from sessiontree._errors import InvalidInput, StoreError
from sessiontree.persistence import sqlite, wal
from sessiontree.persistence.store import Store


def _sqlite_path(target: str | Path) -> str:
    text = str(target)
    if text.startswith("sqlite:///"):
        return text[len("sqlite:///") :]
    if "://" in text:
        scheme = text.split("://", 1)[0]
        raise InvalidInput(
            f"store URL scheme {scheme!r} is not supported yet (only SQLite paths and "
            "sqlite:/// URLs)",
            target=text,
        )
    if not text:
        raise InvalidInput("store path is empty")
    return text


def open_store(
    target: str | Path, *, clock: Clock | None = None, durable: bool = False,
    create: bool = True, group_commit: bool | None = None,
) -> Store:
    """Open (and create, migrate-check) the store at a path or URL.

    Raises :class:`InvalidInput` for an unsupported URL, :class:`SchemaVersionError`
    for a store written by a newer schema, :class:`CorruptStore` for a file that is not
    a store, :class:`StoreError` for anything else the engine refuses. Committed
    transactions that SQLite dropped from a damaged ``-wal`` are described in
    ``store.wal_problem`` (``persistence.wal``); ``verify`` reports them.
    """
    path = _sqlite_path(target)
    if not create and path != ":memory:" and not Path(path).exists():
        raise StoreError(f"no store at {path}", path=path)
    before = wal.scan(path) if path != ":memory:" else None  # before SQLite replays it
    store = Store(sqlite.connect(path, durable=durable), path=path, clock=clock or SystemClock(),
                  group_commit=durable if group_commit is None else group_commit)
    if before is not None:
        # Asked before initialize() can write (a write may restart the WAL).
        store.wal_problem = wal.unreplayable(path, before, lambda: _accepted_frames(store))
        if store.wal_problem is not None:
            kept = wal.keep_copy(path)
            store.wal_problem += f"; the damaged WAL is kept at {kept}" if kept else ""
    if store.wal_problem is None and path != ":memory:":
        kept_before = wal.kept_copies(path)
        if kept_before:
            store.wal_problem = (
                f"an earlier open found committed transactions in the WAL that SQLite could "
                f"not replay; the damaged WAL is kept at {kept_before[0]} (delete it once "
                "dealt with)")
    store.initialize()
    return store


def _accepted_frames(store: Store) -> int | None:
    """How many WAL frames SQLite accepted when it opened the store (a passive
    checkpoint reports them; it changes nothing a reader can see)."""
    try:
        with store._locked():
            store.db.connect(reuse_if_open=True)
            row = store.db.execute_sql(  # type: ignore[no-untyped-call]
                "PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    except sqlite.ERRORS:
        return None  # not a database at all: initialize() says so
    return int(row[1]) if row is not None else None
