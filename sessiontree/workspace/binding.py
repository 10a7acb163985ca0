"""Which workspace a session gets: the binding decisions, as pure functions.

A workspace root is bound to a session at creation (:func:`plan_root`,
:func:`root_binding`) or at spawn (:func:`child_binding`), with a mode:

``locked``
    the session works in the directory itself, shared with the other sessions bound
    to it; path leases (``workspace.leasing``) decide who may write what.
``worktree``
    the directory belongs to a git repository, and the session gets its own worktree
    on its own branch ``sessiontree/<session-id>``, started from its parent's branch
    (a root's: from the repository's ``HEAD``). Every write is committed to that
    branch; a parent merges a child's branch explicitly (``merge_child``).

A child shares its parent's directory and mode (``shared``, the default, or
``locked``: both work there under path leases) unless it asks for ``worktree``: its
own worktree, which needs a parent in ``worktree`` mode.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from sessiontree._errors import InvalidInput, WorkspaceError
from sessiontree._reasons import Reason
from sessiontree.persistence.workspace import WorkspaceBinding
from sessiontree.workspace.git import Git, branch_for, discover

WORKTREES = ("sessiontree", "worktrees")
"""Where own worktrees live: under the repository's git dir, out of every checkout
(path safety refuses ``.git``, so no session reaches them from a workspace)."""

_PLACEHOLDER = "ses_" + "0" * 20


class WorkspaceMode(StrEnum):
    LOCKED = "locked"
    WORKTREE = "worktree"


SPAWN_MODES = ("shared", "locked", "worktree")
"""What a spawn request may ask for: share the parent's directory, or own a worktree."""


@dataclass(frozen=True)
class RootPlan:
    """A host's workspace for a new root session, checked before the session exists."""

    mode: WorkspaceMode
    directory: str  # the real path; worktree mode: the repository's top level
    common_dir: str | None = None
    start: str | None = None  # worktree mode: the commit the root's branch starts from


def worktree_path(common_dir: str, session_id: str) -> str:
    return os.path.join(common_dir, *WORKTREES, session_id)


def plan_root(workspace: str | Path, mode: str | None) -> RootPlan:
    """Check a host's workspace. Raises :class:`InvalidInput` for a directory that does
    not exist, an unknown mode, or (``worktree``) a directory outside a git work tree
    or a repository with no commit yet."""
    chosen = WorkspaceMode.LOCKED if mode is None else mode
    if chosen not in (WorkspaceMode.LOCKED, WorkspaceMode.WORKTREE):
        raise InvalidInput(f"workspace_mode must be 'locked' or 'worktree', not {mode!r}")
    path = Path(workspace)
    if not path.is_dir():
        raise InvalidInput(f"workspace {path} is not a directory")
    real = os.path.realpath(path)
    if chosen == WorkspaceMode.LOCKED:
        return RootPlan(WorkspaceMode.LOCKED, real)
    try:
        top, common = discover(real)
        start = Git(common).run("rev-parse", "--verify", "--quiet", "HEAD^{commit}", ok=(0, 1))
    except WorkspaceError as exc:
        raise InvalidInput(f"workspace_mode 'worktree' needs a git repository: {exc}") from None
    if start.returncode != 0:
        raise InvalidInput(f"the git repository {top} has no commit yet; worktrees start from one")
    return RootPlan(WorkspaceMode.WORKTREE, top, common, start.stdout.strip())


def root_binding(plan: RootPlan, session_id: str) -> WorkspaceBinding:
    if plan.mode == WorkspaceMode.LOCKED:
        return WorkspaceBinding(session_id, WorkspaceMode.LOCKED.value, plan.directory, session_id)
    assert plan.common_dir is not None
    return WorkspaceBinding(
        session_id, WorkspaceMode.WORKTREE.value, worktree_path(plan.common_dir, session_id),
        session_id, repo=plan.directory, common_dir=plan.common_dir,
        branch=branch_for(session_id), start=plan.start, state="pending")


def child_binding(
    parent: WorkspaceBinding | None, parent_id: str, parent_workspace: str | None,
    child_id: str | None, requested: str,
) -> WorkspaceBinding | tuple[Reason, str] | None:
    """The child's binding, None (no workspace: its parent has none), or a rejection
    (reason, detail). ``child_id`` None checks the request before the child exists."""
    if requested not in SPAWN_MODES:
        return Reason.INVALID_INPUT, f"unknown workspace_mode {requested!r}"
    child = child_id or _PLACEHOLDER
    if parent is None and parent_workspace is not None:  # bound before bindings existed
        parent = WorkspaceBinding(parent_id, WorkspaceMode.LOCKED.value, parent_workspace, parent_id)
    if parent is None:
        if requested == WorkspaceMode.WORKTREE:
            return Reason.WORKSPACE_UNAVAILABLE, "an own worktree needs a parent with a workspace"
        return None
    if requested != WorkspaceMode.WORKTREE:
        return parent.shared_with(child)
    if parent.mode != WorkspaceMode.WORKTREE or parent.common_dir is None or parent.branch is None:
        return Reason.WORKSPACE_UNAVAILABLE, (
            "an own worktree needs a parent in worktree mode; this workspace is locked "
            "(its children share it under path leases)")
    return WorkspaceBinding(
        child, WorkspaceMode.WORKTREE.value, worktree_path(parent.common_dir, child), child,
        repo=parent.repo, common_dir=parent.common_dir, branch=branch_for(child),
        start=parent.branch, state="pending")
