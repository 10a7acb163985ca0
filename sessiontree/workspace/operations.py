"""The file operations behind the workspace tools: read, list, write, delete, patch,
lease. Each resolves its paths with ``workspace.paths`` (refusing what would escape),
checks the session's scope on the *resolved* path (``permit``: an inner symlink cannot
carry a write outside the session's ``fs.write:<glob>``), takes or checks the path
leases (``workspace.leasing``), acts, and -- in ``worktree`` mode -- commits what it
changed to the session's branch.

Results are plain JSON-able dicts (or the text read). Failures raise
:class:`~sessiontree._errors.WorkspaceError` (a conflict:
:class:`~sessiontree._errors.WorkspaceConflict`), which the tools hand to the model as
an error result.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from sessiontree._errors import InvalidInput, WorkspaceError
from sessiontree._reasons import Reason
from sessiontree.persistence.workspace import WorkspaceBinding
from sessiontree.workspace import files, globs, leasing, worktrees
from sessiontree.workspace import patch as patches
from sessiontree.workspace.binding import WorkspaceMode
from sessiontree.workspace.leasing import LeaseMode
from sessiontree.workspace.paths import PathRefused, Target, check_name
from sessiontree.workspace.service import Workspaces

Permit = Callable[[str, str], bool]
"""``permit(mode, path)``: may the session ``read``/``write`` this path (or glob)?"""


def require(permit: Permit, mode: str, path: str) -> None:
    if not permit(mode, path):
        raise WorkspaceError(f"{mode} of {path} needs capability fs.{mode}:<a glob covering {path}>",
                             reason=Reason.CAPABILITY_DENIED, path=path)


def _commit(ws: Workspaces, b: WorkspaceBinding, session_id: str, paths: list[str], what: str,
            call_id: str) -> str | None:
    if b.mode != WorkspaceMode.WORKTREE:
        return None
    message = f"{what}\n\nsession {session_id}, tool call {call_id}\n"
    return worktrees.commit(b, paths, message, ws.author(session_id))


def _text(t: Target, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise WorkspaceError(f"{t.real} is not UTF-8 text", path=t.real) from None


def read_file(ws: Workspaces, session_id: str, path: str, permit: Permit) -> str:
    """The text of a file. Refused if another session holds a write lease on it."""
    b = ws.binding(session_id)
    root = ws.root(b)
    with ws.locked(b), root.resolve(path) as t:
        require(permit, LeaseMode.READ, t.real)
        leasing.acquire(ws.store, session_id, b.path, [t.real], LeaseMode.READ, hold=False)
        return _text(t, files.read_bytes(root, t))


def list_dir(ws: Workspaces, session_id: str, path: str, permit: Permit) -> dict[str, Any]:
    """A directory's entries (names, types, sizes). Takes and checks no lease."""
    b = ws.binding(session_id)
    root = ws.root(b)
    with ws.locked(b), root.resolve(path) as t:
        require(permit, LeaseMode.READ, t.real)
        entries, cut = files.list_dir(root, t)
        return {"path": t.real, "entries": entries, "truncated": cut}


def write_file(ws: Workspaces, session_id: str, call_id: str, path: str, content: str,
               permit: Permit) -> dict[str, Any]:
    """Replace or create a file, atomically, under a write lease (held until the
    session ends); committed to the session's branch in ``worktree`` mode."""
    data = encode_text(content)
    b = ws.binding(session_id)
    root = ws.root(b)
    with ws.locked(b), root.resolve(path) as t:
        require(permit, LeaseMode.WRITE, t.real)
        leasing.acquire(ws.store, session_id, b.path, [t.real], LeaseMode.WRITE)
        written = files.write_atomic(root, t, [data])
        commit = _commit(ws, b, session_id, [written.path], f"write_file {written.path}", call_id)
    return {"path": written.path, "bytes": written.size, "created": written.created, "commit": commit}


def encode_text(content: str) -> bytes:
    try:
        return content.encode("utf-8")
    except UnicodeEncodeError:
        raise WorkspaceError("content is not valid Unicode (a lone surrogate)") from None


def delete_file(ws: Workspaces, session_id: str, call_id: str, attempt: int, path: str,
                permit: Permit) -> dict[str, Any]:
    """Delete a regular file under a write lease. A re-run (``attempt`` > 1) of a
    delete that already happened reports it instead of failing."""
    b = ws.binding(session_id)
    root = ws.root(b)
    with ws.locked(b), root.resolve(path, follow=False) as t:
        require(permit, LeaseMode.WRITE, t.real)
        leasing.acquire(ws.store, session_id, b.path, [t.real], LeaseMode.WRITE)
        if attempt > 1 and (t.missing or t.lstat is None):
            return {"path": t.real, "deleted": False, "already_deleted": True, "commit": None}
        files.delete(t)
        commit = _commit(ws, b, session_id, [t.real], f"delete_file {t.real}", call_id)
    return {"path": t.real, "deleted": True, "commit": commit}


def apply_patch(ws: Workspaces, session_id: str, call_id: str, attempt: int, text: str,
                permit: Permit) -> dict[str, Any]:
    """Apply a unified diff: every file checked, leased and computed first, then
    written (each file atomically); a patch that does not apply changes nothing."""
    parsed = patches.parse(text)
    b = ws.binding(session_id)
    root = ws.root(b)
    with ws.locked(b), contextlib.ExitStack() as stack:
        targets = [stack.enter_context(root.resolve(fp.path)) for fp in parsed]
        reals = [t.real for t in targets]
        if len(set(reals)) != len(reals):
            raise WorkspaceError("the patch changes one file twice")
        for real in reals:
            require(permit, LeaseMode.WRITE, real)
        leasing.acquire(ws.store, session_id, b.path, reals, LeaseMode.WRITE)
        outcomes = []
        for fp, t in zip(parsed, targets, strict=True):
            current = None if (t.missing or t.lstat is None) else _text(t, files.read_bytes(root, t))
            try:
                outcomes.append(patches.apply_file(fp, current, retry=attempt > 1))
            except patches.PatchError as exc:
                raise patches.PatchError(str(exc), path=t.real) from None
        for outcome, t in zip(outcomes, targets, strict=True):
            if outcome.action == "deleted":
                files.delete(t)
            elif outcome.content is not None:
                files.write_atomic(root, t, [encode_text(outcome.content)])
        changed = [t.real for o, t in zip(outcomes, targets, strict=True) if o.action != "already_applied"]
        commit = _commit(ws, b, session_id, changed, f"apply_patch {', '.join(changed)}", call_id) \
            if changed else None
    return {"files": [{"path": t.real, "action": o.action} for o, t in zip(outcomes, targets, strict=True)],
            "commit": commit}


def lease_paths(ws: Workspaces, session_id: str, patterns: list[str], mode: str,
                permit: Permit, ttl: float | None = None) -> dict[str, Any]:
    """Take leases on paths or globs before working on them: all or none."""
    b = ws.binding(session_id)
    checked = []
    for pattern in patterns:
        try:
            norm = globs.check_pattern(pattern)
        except InvalidInput as exc:
            raise PathRefused(pattern, str(exc)) from None
        for part in globs.segments(norm):
            check_name(pattern, part)
        require(permit, mode, norm)
        checked.append(norm)
    added = leasing.acquire(ws.store, session_id, b.path, checked, mode, ttl=ttl)
    return {"mode": mode, "leased": added, "already_held": [p for p in checked if p not in added]}
