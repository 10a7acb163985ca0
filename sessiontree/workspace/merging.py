"""Merging a child's branch into its parent's worktree: explicit, and decided at once.

A clean merge is committed in the parent's worktree with the child's summary as the
message. A conflict aborts the merge -- the parent's tree is left exactly as it was --
and is reported as :class:`~sessiontree._errors.WorkspaceConflict` (``kind="merge"``,
the conflicting paths, and each one's text with git's conflict markers) plus a
``FR-EVT-SESS-WORKSPACE-CONFLICT`` event. The parent resolves it by calling again
with ``resolutions``: the final text of every conflicting path (None deletes it).
"""

from __future__ import annotations

import contextlib
from typing import Any

from sessiontree._errors import UnknownSession, WorkspaceConflict, WorkspaceError
from sessiontree._reasons import Reason
from sessiontree._states import SessionState
from sessiontree.persistence import workspace as rows
from sessiontree.persistence.workspace import WorkspaceBinding
from sessiontree.workspace import files, leasing, worktrees
from sessiontree.workspace.binding import WorkspaceMode
from sessiontree.workspace.leasing import LeaseMode
from sessiontree.workspace.operations import Permit, encode_text, require
from sessiontree.workspace.paths import Root, check_relative, shown
from sessiontree.workspace.service import Workspaces

MAX_CONFLICT_TEXT = 16_000
"""Characters of each conflicting file shown to the parent (the rest is cut)."""


def _child(ws: Workspaces, session_id: str, child_id: str) -> tuple[WorkspaceBinding, str]:
    """The child's own worktree binding and summary, or a refusal saying why not."""
    try:
        child = ws.session(child_id)
    except UnknownSession:
        raise WorkspaceError(f"no session {shown(child_id)}", reason=Reason.INVALID_ARGS) from None
    if child.parent_id != session_id:
        raise WorkspaceError(f"{child_id} is not a child of this session", reason=Reason.INVALID_ARGS)
    b = rows.read_binding(ws.store, child_id)
    if b is None or b.mode != WorkspaceMode.WORKTREE or not b.own or b.branch is None:
        raise WorkspaceError(f"{child_id} shares this session's workspace: its writes are already "
                             "here; only a child with its own worktree is merged")
    if child.state != SessionState.COMPLETED.value:
        kept = f"; its worktree is kept at {b.path}" if child.state != "running" else ""
        raise WorkspaceError(f"{child_id} is {child.state}, not completed: only a completed "
                             f"child's branch is merged{kept}", child_state=child.state)
    summary = ""
    if child.summary_hash:
        summary = str(ws.store.artifact_json(child.summary_hash).get("summary", ""))
    return b, summary


def _conflict_text(root: Root, path: str) -> str:
    try:
        with root.resolve(path) as t:
            if t.lstat is None or t.missing:
                return "(deleted on one side, changed on the other)"
            data = files.read_bytes(root, t, limit=4 * MAX_CONFLICT_TEXT)
    except WorkspaceError as exc:
        return f"({exc})"
    text = data.decode("utf-8", "replace")
    return text if len(text) <= MAX_CONFLICT_TEXT else text[:MAX_CONFLICT_TEXT] + "\n[... cut]"


def merge_child(
    ws: Workspaces, session_id: str, child_id: str, resolutions: dict[str, str | None] | None,
    permit: Permit,
) -> dict[str, Any]:
    """Merge the completed child's branch into this session's worktree (module
    docstring). Idempotent: a branch already merged is reported, not merged again."""
    parent = ws.binding(session_id)
    if parent.mode != WorkspaceMode.WORKTREE:
        raise WorkspaceError("merge_child needs a session in worktree mode")
    child, summary = _child(ws, session_id, child_id)
    branch = child.branch
    assert branch is not None
    if child.common_dir != parent.common_dir:
        raise WorkspaceError(f"{child_id}'s worktree belongs to another repository")
    wanted = {check_relative(k): v for k, v in (resolutions or {}).items()}
    message = (f"{summary.strip() or 'work of ' + child_id}\n\n"
               f"Merged-Child: {child_id}\nBranch: {branch}\n")
    root = ws.root(parent)
    with ws.locked(parent):
        if worktrees.merging(parent):  # left by a host that died mid-merge: start again
            worktrees.abort(parent)
        if worktrees.is_merged(parent, branch):
            return {"merged": False, "already_merged": True, "child_id": child_id, "branch": branch,
                    "commit": worktrees.head(parent)}
        changed = worktrees.changed_paths(parent, branch)
        for path in changed:
            require(permit, LeaseMode.WRITE, check_relative(path))
        leasing.acquire(ws.store, session_id, parent.path, changed, LeaseMode.WRITE)
        state = worktrees.begin_merge(parent, branch)
        try:
            if state.conflicts:
                _resolve(ws, root, parent, session_id, child_id, branch, state.conflicts, wanted)
            elif wanted:
                raise WorkspaceError(f"the merge is clean; resolutions given for {sorted(wanted)}")
            commit = worktrees.finish_merge(parent, message, ws.author(session_id))
        except BaseException:
            with contextlib.suppress(Exception):
                worktrees.abort(parent)
            raise
        with ws.store.transaction() as tx:
            tx.event("FR-EVT-SESS-WORKSPACE-MERGED", session_id, None, {
                "child_id": child_id, "branch": branch, "commit": commit, "paths": changed,
                "resolved": state.conflicts})
    return {"merged": True, "child_id": child_id, "branch": branch, "commit": commit,
            "paths": changed, "resolved": state.conflicts}


def _resolve(ws: Workspaces, root: Root, parent: WorkspaceBinding, session_id: str, child_id: str,
             branch: str, conflicts: list[str], wanted: dict[str, str | None]) -> None:
    """Write the given resolutions into the merge in progress, or abort it and report."""
    missing = [p for p in conflicts if p not in wanted]
    extra = sorted(set(wanted) - set(conflicts))
    if missing or extra:
        texts = {p: _conflict_text(root, p) for p in conflicts}
        worktrees.abort(parent)
        with ws.store.transaction() as tx:
            tx.event("FR-EVT-SESS-WORKSPACE-CONFLICT", session_id, None, {
                "kind": "merge", "paths": conflicts, "child_id": child_id, "branch": branch})
        detail = f"; resolutions name paths that do not conflict: {extra}" if extra else ""
        raise WorkspaceConflict(
            f"merging {child_id} ({branch}) conflicts in {', '.join(conflicts)}; the merge was "
            f"aborted, nothing changed. Call merge_child again with resolutions: the final text "
            f"of each of these paths{detail}",
            kind="merge", paths=tuple(conflicts), child_id=child_id, branch=branch,
            conflicts=texts, unresolved=missing)
    for path in conflicts:
        with root.resolve(path) as t:
            text = wanted[path]
            if text is None:
                if t.lstat is not None and not t.missing:
                    files.delete(t)
            else:
                files.write_atomic(root, t, [encode_text(text)])
    worktrees.stage(parent, conflicts)
    left = worktrees.unresolved(parent)
    if left:
        raise WorkspaceError(f"still unresolved after writing the resolutions: {left}")
