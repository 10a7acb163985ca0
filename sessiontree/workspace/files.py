"""File operations on a resolved :class:`~sessiontree.workspace.paths.Target`.

Every operation opens its final component relative to the parent's descriptor, with
``O_NOFOLLOW`` (and ``O_NONBLOCK``, so a FIFO swapped in cannot block the open), and
re-checks what it opened. Writes are atomic: the bytes go to a temporary file in the
same directory, which is fsynced and renamed over the target, and the directory is
fsynced; a crash at any moment leaves the old file or the new one, never a mix.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass

from sessiontree._errors import WorkspaceError
from sessiontree.workspace.paths import PathRefused, Root, Target, file_kind, is_git_name, require_regular

_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
TEMP_PREFIX = ".st-"
TEMP_SUFFIX = ".tmp"

MAX_READ_BYTES = 1 << 20
"""Largest file read_file returns (1 MiB): a model's context is smaller than that."""

MAX_LIST_ENTRIES = 2000
"""Entries list_dir returns at most; the result says when it cut the list."""


@dataclass(frozen=True)
class Written:
    path: str  # relative to the root, inner symlinks followed
    size: int
    created: bool


def _missing(t: Target) -> WorkspaceError:
    return WorkspaceError(f"no such file in the workspace: {t.real}", path=t.real)


def read_bytes(root: Root, t: Target, limit: int = MAX_READ_BYTES) -> bytes:
    """The whole content of the regular file ``t`` (refused above ``limit`` bytes)."""
    if t.missing or t.lstat is None or t.name is None:
        raise _missing(t)
    require_regular(t, t.lstat)
    t.race("open")
    try:
        fd = os.open(t.name, _READ_FLAGS, dir_fd=t.dir_fd)
    except OSError:  # ELOOP: a symlink swapped in after the check
        raise PathRefused(t.asked, f"{t.real} changed while it was opened") from None
    try:
        require_regular(t, os.fstat(fd))
        root.check_inside(fd, t)
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise WorkspaceError(f"{t.real} is larger than {limit} bytes", path=t.real)
        return b"".join(chunks)
    finally:
        os.close(fd)


def write_atomic(root: Root, t: Target, chunks: Iterable[bytes]) -> Written:
    """Replace (or create) the file ``t`` with ``chunks``, atomically (module docstring).

    Refuses a directory, a special file and a file with several hard links. Creates
    missing parent directories.
    """
    if t.name is None:
        raise WorkspaceError(f"{t.real} is a directory", path=t.real)
    mode = 0o644
    if t.lstat is not None:
        require_regular(t, t.lstat, writing=True)
        mode = stat.S_IMODE(t.lstat.st_mode)
    root.make_dirs(t)
    tmp = f"{TEMP_PREFIX}{os.urandom(8).hex()}{TEMP_SUFFIX}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode,
                 dir_fd=t.dir_fd)
    size = 0
    try:
        try:
            root.check_inside(fd, t)
            for chunk in chunks:
                view = memoryview(chunk)
                while view:
                    done = os.write(fd, view)
                    view = view[done:]
                    size += done
            os.fsync(fd)  # the bytes are on disk before the name points at them
        finally:
            os.close(fd)
        t.race("rename")
        created = _check_replaceable(t)
        os.rename(tmp, t.name, src_dir_fd=t.dir_fd, dst_dir_fd=t.dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=t.dir_fd)
        raise
    os.fsync(t.dir_fd)  # and the rename itself
    return Written(t.real, size, created)


def _check_replaceable(t: Target) -> bool:
    """Just before the rename: what is at the name now may be replaced. True if none."""
    assert t.name is not None
    try:
        now = os.stat(t.name, dir_fd=t.dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return True
    if stat.S_ISLNK(now.st_mode):
        return False  # rename replaces the link itself, never what it points at
    require_regular(t, now, writing=True)
    return False


def delete(t: Target) -> None:
    """Delete the regular file ``t`` (resolved without following a final symlink)."""
    if t.missing or t.lstat is None or t.name is None:
        raise _missing(t)
    if stat.S_ISLNK(t.lstat.st_mode):
        raise PathRefused(t.asked, f"{t.real} is a symlink; delete_file deletes regular files")
    require_regular(t, t.lstat, writing=True)
    os.unlink(t.name, dir_fd=t.dir_fd)  # unlink never follows a link
    os.fsync(t.dir_fd)


def list_dir(root: Root, t: Target) -> tuple[list[dict[str, object]], bool]:
    """The entries of the directory ``t`` (``.git`` and our temporary files hidden),
    sorted by name, and whether the list was cut at :data:`MAX_LIST_ENTRIES`."""
    if t.missing or (t.name is not None and t.lstat is None):
        raise _missing(t)
    if t.name is None:
        fd = os.dup(t.dir_fd)
    else:
        assert t.lstat is not None
        if not stat.S_ISDIR(t.lstat.st_mode):
            raise WorkspaceError(f"{t.real} is not a directory", path=t.real)
        t.race("open")
        try:
            fd = os.open(t.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                         dir_fd=t.dir_fd)
        except OSError:
            raise PathRefused(t.asked, f"{t.real} changed while it was opened") from None
    entries: list[dict[str, object]] = []
    try:
        root.check_inside(fd, t)
        with os.scandir(fd) as it:
            for entry in it:
                name = entry.name
                if is_git_name(name) or (name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX)):
                    continue
                st = entry.stat(follow_symlinks=False)
                kind = file_kind(st.st_mode)
                item: dict[str, object] = {"name": name, "type": kind}
                if kind == "file":
                    item["size"] = st.st_size
                entries.append(item)
    finally:
        os.close(fd)
    entries.sort(key=lambda e: str(e["name"]))
    cut = len(entries) > MAX_LIST_ENTRIES
    return entries[:MAX_LIST_ENTRIES], cut
