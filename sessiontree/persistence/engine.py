"""Opening a store: from a path or URL to a ready :class:`Store` (schema checked).

The one factory that picks the engine: SQLite paths and ``sqlite:///`` URLs today
(``persistence.sqlite``); a ``postgresql://`` URL will pick a PostgreSQL engine module.
"""

from __future__ import annotations

from pathlib import Path

from sessiontree._clock import Clock, SystemClock
from sessiontree._errors import InvalidInput, StoreError
from sessiontree.persistence import sqlite
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
    create: bool = True,
) -> Store:
    """Open (and create, migrate-check) the store at a path or URL.

    Raises :class:`InvalidInput` for an unsupported URL, :class:`SchemaVersionError`
    for a store written by a newer schema, :class:`CorruptStore` for a file that is not
    a store, :class:`StoreError` for anything else the engine refuses.
    """
    path = _sqlite_path(target)
    if not create and path != ":memory:" and not Path(path).exists():
        raise StoreError(f"no store at {path}", path=path)
    store = Store(sqlite.connect(path, durable=durable), path=path, clock=clock or SystemClock())
    store.initialize()
    return store
