"""Git worktrees of sessions in ``worktree`` mode: create, commit, merge, remove.

Every function takes the repository's lock from its caller (``Workspaces``): git
commands on one repository run one at a time. Refs passed to git are our own branch
names or commit ids (``git.check_ref``); paths come after ``--``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from sessiontree._errors import WorkspaceError
from sessiontree._reasons import Reason
from sessiontree.persistence.workspace import WorkspaceBinding
from sessiontree.workspace.git import Git, check_ref


def _tree(b: WorkspaceBinding) -> Git:
    if b.git_dir is None:
        raise WorkspaceError(f"the worktree of {b.owner_id} does not exist yet",
                             reason=Reason.WORKSPACE_UNAVAILABLE)
    return Git(b.git_dir, b.path)


def _common(b: WorkspaceBinding) -> Git:
    assert b.common_dir is not None
    return Git(b.common_dir)


def _git_dir_of(path: str) -> str | None:
    try:
        with open(os.path.join(path, ".git"), encoding="utf-8") as fh:
            text = fh.read().strip()
    except OSError:
        return None
    return os.path.realpath(text[len("gitdir:"):].strip()) if text.startswith("gitdir:") else None


def create(b: WorkspaceBinding) -> tuple[str, str]:
    """Create the worktree and branch of ``b`` (or find them made by an earlier try);
    return (its git dir, the commit it starts from)."""
    assert b.branch is not None and b.start is not None
    common = _common(b)
    branch = check_ref(b.branch)
    git_dir = _git_dir_of(b.path)
    if git_dir is None:
        common.run("worktree", "prune")
        exists = common.run("rev-parse", "--verify", "--quiet", f"refs/heads/{branch}", ok=(0, 1))
        os.makedirs(os.path.dirname(b.path), exist_ok=True)
        if exists.returncode == 0:
            common.run("worktree", "add", "--quiet", "--", b.path, branch)
        else:
            common.run("worktree", "add", "--quiet", "-b", branch, "--", b.path, check_ref(b.start))
        git_dir = _git_dir_of(b.path)
        if git_dir is None:
            raise WorkspaceError(f"git made no worktree at {b.path}", reason=Reason.WORKSPACE_UNAVAILABLE)
    base = Git(git_dir, b.path).out("rev-parse", "HEAD")
    return git_dir, base


def commit(b: WorkspaceBinding, paths: list[str], message: str, author: tuple[str, str],
           *, force: bool = True) -> str | None:
    """Commit the current state of ``paths`` (all of the tree if empty) to the branch;
    return the new commit id, or None if nothing changed. ``force`` also commits a path
    the repository ignores: a session's write is never silently left out."""
    git = _tree(b)
    add = ["add", "-A"] + (["-f"] if force and paths else [])
    git.run(*add, "--", *(paths or ["."]))
    if git.run("diff", "--cached", "--quiet", "--no-ext-diff", ok=(0, 1)).returncode == 0:
        return None
    git.run("commit", "--quiet", "--no-verify", "-F", "-", input=message, author=author)
    return git.out("rev-parse", "HEAD")


def remove(b: WorkspaceBinding, author: tuple[str, str]) -> str | None:
    """Commit what is left in the worktree (nothing, if every write went through the
    file tools), then remove the worktree; the branch stays. Returns that commit."""
    last = None
    if _git_dir_of(b.path) is not None:
        last = commit(b, [], "sessiontree: changes left in the worktree at completion", author,
                      force=False)
        _common(b).run("worktree", "remove", "--force", "--", b.path)
    _common(b).run("worktree", "prune")
    return last


@dataclass(frozen=True)
class MergeState:
    """A merge begun in the parent's worktree: clean, or with conflicting paths."""

    conflicts: list[str]


def is_merged(parent: WorkspaceBinding, branch: str) -> bool:
    done = _tree(parent).run("merge-base", "--is-ancestor", check_ref(branch), "HEAD", ok=(0, 1))
    return done.returncode == 0


def changed_paths(parent: WorkspaceBinding, branch: str) -> list[str]:
    """Paths the branch changed since it forked from the parent's branch."""
    return _tree(parent).names("diff", "--name-only", "-z", "--no-ext-diff", "--no-renames",
                               f"HEAD...{check_ref(branch)}", "--")


def begin_merge(parent: WorkspaceBinding, branch: str) -> MergeState:
    """``git merge --no-ff --no-commit``: leaves the merge in progress (clean or not)."""
    git = _tree(parent)
    done = git.run("merge", "--no-ff", "--no-commit", "--no-edit", "--no-verify", check_ref(branch),
                   ok=(0, 1))
    if done.returncode == 0:
        return MergeState([])
    conflicts = git.names("diff", "--name-only", "-z", "--diff-filter=U", "--no-ext-diff")
    if not conflicts:  # failed for another reason (nothing was merged)
        abort(parent)
        raise WorkspaceError(f"git merge failed: {(done.stderr or done.stdout).strip()[:500]}")
    return MergeState(conflicts)


def stage(parent: WorkspaceBinding, paths: list[str]) -> None:
    _tree(parent).run("add", "-A", "-f", "--", *paths)


def unresolved(parent: WorkspaceBinding) -> list[str]:
    return _tree(parent).names("diff", "--name-only", "-z", "--diff-filter=U", "--no-ext-diff")


def finish_merge(parent: WorkspaceBinding, message: str, author: tuple[str, str]) -> str:
    git = _tree(parent)
    git.run("commit", "--quiet", "--no-verify", "-F", "-", input=message, author=author)
    return git.out("rev-parse", "HEAD")


def abort(parent: WorkspaceBinding) -> None:
    _tree(parent).run("merge", "--abort", ok=(0, 128))


def merging(b: WorkspaceBinding) -> bool:
    """A merge is in progress in the worktree (one a dead host left half done)."""
    return b.git_dir is not None and os.path.exists(os.path.join(b.git_dir, "MERGE_HEAD"))


def head(b: WorkspaceBinding) -> str:
    return _tree(b).out("rev-parse", "HEAD")
