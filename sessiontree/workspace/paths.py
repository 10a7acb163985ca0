"""Path safety: every file tool resolves its path here, inside the workspace root.

Refused, with a :class:`PathRefused` that names the path: an absolute path; ``..``
that climbs out of the root; a symlink, at any component, that leads outside; a
device file, FIFO or socket; a path longer than :data:`MAX_PATH_BYTES` or with a
component longer than :data:`MAX_NAME_BYTES`; a NUL byte or another control
character; text that is not valid Unicode; any component named ``.git`` (in any
case: the repository's own files, hooks and config are never reachable). Writes also
refuse a file with more than one hard link (another of its names may be outside).

How, so a symlink swapped in between a check and the use cannot escape: the path is
walked from a descriptor of the root, one component at a time. Each component is
looked up with ``lstat`` relative to its parent's descriptor and opened with
``O_NOFOLLOW``; a symlink is read and resolved here (never by the kernel), and refused
if it leads outside. The kernel never follows a link we did not check, an opened
directory is compared (device, inode) with what was checked, and an opened file is
re-checked after opening (its type by ``fstat``, its real path by ``/proc/self/fd``).
Symlinks that stay inside the root are followed, at most :data:`MAX_LINKS` of them.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import stat
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sessiontree._errors import WorkspaceError
from sessiontree._reasons import Reason
from sessiontree.workspace.globs import MAX_PATH_BYTES

MAX_NAME_BYTES = 255
"""Longest path component (Linux NAME_MAX)."""

MAX_LINKS = 40
"""Symlinks followed in one resolution (Linux MAXSYMLINKS): more is a loop."""

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
RaceHook = Callable[[str, str], None]


class PathRefused(WorkspaceError):
    """A path that would leave the workspace, or that names something no file tool may
    touch. ``path`` is the path as asked for; the message says why."""

    reason = Reason.PATH_REFUSED

    def __init__(self, path: str, why: str) -> None:
        super().__init__(f"path refused: {shown(path)}: {why}", path=shown(path), why=why)
        self.path = shown(path)
        self.why = why


def shown(path: object) -> str:
    """The path as a message can show it: control characters and lone surrogates
    escaped, cut at 300 characters."""
    text = path if isinstance(path, str) else repr(path)
    shown = "".join(c if c.isprintable() and not 0xD800 <= ord(c) <= 0xDFFF
                    else repr(c)[1:-1] for c in text[:300])
    return shown + ("..." if len(text) > 300 else "")


def is_git_name(name: str) -> bool:
    """``.git`` in any case, also with the trailing dots or spaces other filesystems
    drop (``.git.``, ``.GIT ``): the names git itself protects."""
    return name.rstrip(". ").lower() == ".git" or name.lower().startswith(".git\\")


def check_relative(path: str) -> str:
    """Check ``path`` as text and return it normalized (``./a//b`` -> ``a/b``; the root
    is ``.``). ``..`` is applied lexically and refused if it climbs out. Raises
    :class:`PathRefused`."""
    if not isinstance(path, str):
        raise PathRefused(repr(path), "not a string")
    if path == "":
        raise PathRefused(path, "empty path")
    if "\x00" in path:
        raise PathRefused(path, "NUL byte in path")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in path):
        raise PathRefused(path, "control character in path")
    try:
        size = len(path.encode("utf-8"))
    except UnicodeEncodeError:
        raise PathRefused(path, "not valid Unicode (a lone surrogate)") from None
    if size > MAX_PATH_BYTES:
        raise PathRefused(path, f"longer than {MAX_PATH_BYTES} bytes")
    if path.startswith("/"):
        raise PathRefused(path, "absolute paths are refused; give a path relative to the workspace")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise PathRefused(path, "'..' climbs out of the workspace")
            parts.pop()
            continue
        check_name(path, part)
        parts.append(part)
    return "/".join(parts) or "."


def check_name(path: str, name: str) -> None:
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise PathRefused(path, f"a component is longer than {MAX_NAME_BYTES} bytes")
    if is_git_name(name):
        raise PathRefused(path, "the repository's .git is not reachable from a workspace")


@dataclass
class Target:
    """Where a resolved path lands: ``name`` in the directory open as ``dir_fd``.

    ``missing`` are directories still to create between them (a write creates them);
    ``name`` is None when the path is that directory itself; ``lstat`` is the final
    component as checked (None if it does not exist). ``real`` is the path relative
    to the root once inner symlinks are followed: leases and scopes are decided on it.
    """

    fds: list[int]
    parents: list[str]
    missing: list[str]
    name: str | None
    lstat: os.stat_result | None
    asked: str
    hooks: list[RaceHook] = field(default_factory=list)
    via: str = ""  # the last symlink followed (for messages)

    @property
    def dir_fd(self) -> int:
        return self.fds[-1]

    @property
    def real(self) -> str:
        parts = [*self.parents, *self.missing, *([self.name] if self.name else [])]
        return "/".join(parts) or "."

    def race(self, stage: str) -> None:
        for hook in self.hooks:
            hook(stage, self.real)


class Root:
    """A workspace root directory, resolved once (``path`` is its real path)."""

    def __init__(self, path: str | Path) -> None:
        self.path = os.path.realpath(path)
        self.race_hooks: list[RaceHook] = []
        """Test seam: called between a check and the use it guards (``dir``, ``open``,
        ``rename``), so a test can swap a symlink in exactly there."""

    def __repr__(self) -> str:
        return f"Root({self.path!r})"

    @contextlib.contextmanager
    def resolve(self, path: str, *, follow: bool = True) -> Iterator[Target]:
        """Walk ``path`` from the root (see the module docstring); the descriptors of
        the result are closed when the block ends. ``follow=False`` leaves a final
        symlink unfollowed. Raises :class:`PathRefused`."""
        norm = check_relative(path)
        try:
            root_fd = os.open(self.path, _DIR_FLAGS)
        except OSError as exc:
            raise WorkspaceError(f"workspace root {self.path} cannot be opened: {exc.strerror}",
                                 reason=Reason.WORKSPACE_UNAVAILABLE) from None
        target = Target([root_fd], [], [], None, None, path, self.race_hooks)
        try:
            self._walk(target, deque(p for p in norm.split("/") if p != "."), follow)
            yield target
        finally:
            for fd in target.fds:
                os.close(fd)

    def _walk(self, t: Target, pending: deque[str], follow: bool) -> None:
        links = 0
        while pending:
            name = pending.popleft()
            if name in ("", "."):
                continue
            if name == "..":  # only from a symlink's target
                if not t.parents:
                    raise PathRefused(t.asked, f"symlink {t.via} leads outside the workspace")
                t.parents.pop()
                os.close(t.fds.pop())
                continue
            check_name(t.asked, name)
            try:
                st = os.stat(name, dir_fd=t.dir_fd, follow_symlinks=False)
            except FileNotFoundError:
                rest = list(pending)
                if ".." in rest:
                    raise PathRefused(t.asked, "'..' after a directory that does not exist") from None
                for part in rest:
                    check_name(t.asked, part)
                *t.missing, t.name = [name, *(p for p in rest if p not in ("", "."))]
                return
            except NotADirectoryError:
                raise PathRefused(t.asked, f"{'/'.join(t.parents) or '.'} is not a directory") from None
            if stat.S_ISLNK(st.st_mode) and (pending or follow):
                links += 1
                if links > MAX_LINKS:
                    raise PathRefused(t.asked, f"more than {MAX_LINKS} symlinks (a loop?)")
                self._follow(t, name, pending)
                continue
            if not pending:
                t.name, t.lstat = name, st
                return
            if not stat.S_ISDIR(st.st_mode):
                raise PathRefused(t.asked, f"{'/'.join([*t.parents, name])} is not a directory")
            t.race("dir")
            t.fds.append(self._open_dir(t, name, st))
            t.parents.append(name)

    def _follow(self, t: Target, name: str, pending: deque[str]) -> None:
        link = os.readlink(name, dir_fd=t.dir_fd)
        where = t.via = "/".join([*t.parents, name])
        if link.startswith("/"):
            inside = posixpath.normpath(link)
            if inside != self.path and not inside.startswith(self.path + "/"):
                raise PathRefused(t.asked, f"symlink {where} points outside the workspace")
            while len(t.fds) > 1:  # start again from the root
                os.close(t.fds.pop())
            t.parents.clear()
            link = inside[len(self.path) :]
        pending.extendleft(reversed(link.split("/")))

    def _open_dir(self, t: Target, name: str, st: os.stat_result) -> int:
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=t.dir_fd)
        except OSError:  # ELOOP: a symlink swapped in after the check; ENOTDIR likewise
            raise PathRefused(t.asked, f"{name} changed while the path was resolved") from None
        opened = os.fstat(fd)
        if (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino):
            os.close(fd)
            raise PathRefused(t.asked, f"{name} changed while the path was resolved")
        return fd

    def make_dirs(self, t: Target) -> None:
        """Create ``t.missing`` one by one, each opened without following a link."""
        while t.missing:
            name = t.missing[0]
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o755, dir_fd=t.dir_fd)
            try:
                st = os.stat(name, dir_fd=t.dir_fd, follow_symlinks=False)
            except OSError as exc:
                raise WorkspaceError(f"cannot create directory {name}: {exc.strerror}") from None
            if not stat.S_ISDIR(st.st_mode):
                raise PathRefused(t.asked, f"{name} is not a directory")
            t.fds.append(self._open_dir(t, name, st))
            t.parents.append(t.missing.pop(0))

    def check_inside(self, fd: int, t: Target) -> None:
        """After opening: the kernel's own idea of where ``fd`` is must be inside."""
        try:
            real = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return  # no /proc: the descriptor walk above is the guarantee
        if real != self.path and not real.startswith(self.path + "/"):
            raise PathRefused(t.asked, "resolved outside the workspace")


def file_kind(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "other"


def require_regular(t: Target, st: os.stat_result, *, writing: bool = False) -> None:
    kind = file_kind(st.st_mode)
    if kind == "dir":
        raise WorkspaceError(f"{t.real} is a directory", path=t.real)
    if kind != "file":
        raise PathRefused(t.asked, f"{t.real} is a {kind}, not a regular file")
    if writing and st.st_nlink > 1:
        raise PathRefused(
            t.asked, f"{t.real} has {st.st_nlink} hard links; another may be outside the workspace")


def facts(exc: WorkspaceError) -> dict[str, Any]:
    """What a tool result shows of a workspace error, besides its message."""
    return {k: v for k, v in exc.facts.items() if v not in (None, [], ())}
