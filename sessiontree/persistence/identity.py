"""The store file's identity, checked by the lease heartbeat.

An open SQLite connection keeps writing to the file it opened, by descriptor, even when
that file is deleted or moved away and another put at its path: the process would carry
on, and lose everything at close (or, worse, a later open would pair the new file with
the old ``-wal``). So the runtime records the file's identity (``st_dev``, ``st_ino``)
at open, and every heartbeat compares it with the file now at the path.

When the file is gone or replaced, :func:`seal` checkpoints the WAL into the file the
connection holds (truncating the ``-wal``) and closes the store: a store that was
*moved* keeps everything committed, including the ``FR-EVT-SESS-STORE-LOST`` event
written just before; a deleted one takes it with it, and only the ERROR log line
remains. Nothing is written after that: the ``-wal`` is found by path, so a file put
at the store's path would inherit whatever a later write left in it.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

from sessiontree._errors import StoreLost, StoreReplaced
from sessiontree.persistence.store import Store


@dataclass(frozen=True)
class FileIdentity:
    dev: int
    ino: int

    def __str__(self) -> str:
        return f"{self.dev}:{self.ino}"


def absolute(path: str) -> str:
    """``path`` made absolute now, so a later change of directory cannot fool the check."""
    return path if path == ":memory:" else os.path.abspath(path)


def identity_of(path: str) -> FileIdentity | None:
    """The identity of the file at ``path`` now; None if there is none (or for
    ``:memory:``)."""
    if path == ":memory:":
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return FileIdentity(st.st_dev, st.st_ino)


def check(path: str, expected: FileIdentity | None) -> StoreLost | None:
    """The error to raise from now on if the file at ``path`` is no longer the one
    opened (``expected``); None while it is."""
    if expected is None:
        return None
    found = identity_of(path)
    if found == expected:
        return None
    if found is None:
        return StoreLost(
            f"the store file {path} is gone (deleted or moved away while this runtime "
            "had it open); nothing more is written to it",
            path=path, expected=str(expected), found=None,
        )
    return StoreReplaced(
        f"the store file {path} was replaced by another file while this runtime had it "
        "open; nothing more is written to either",
        path=path, expected=str(expected), found=str(found),
    )


def seal(store: Store) -> None:
    """Checkpoint the WAL into the file the connection holds, truncate the ``-wal``, and
    close the store (see the module docstring). Best effort: never raises."""
    store.stop_checkpointer()
    with contextlib.suppress(Exception), store._locked():
        store.db.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[no-untyped-call]
    store.close()
