"""The hardened git layer: worktrees made, committed and merged with our own refs only,
and nothing a repository or the host's environment configures can run a program."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from workspace_support import git, make_repo, trap

from sessiontree._errors import WorkspaceError
from sessiontree.persistence.workspace import WorkspaceBinding
from sessiontree.workspace import worktrees
from sessiontree.workspace.binding import worktree_path
from sessiontree.workspace.git import Git, branch_for, check_ref, discover

AUTHOR = ("sessiontree test", "ses@sessiontree.invalid")


def sid(n: int) -> str:
    return f"ses_{n:020x}"


def own_tree(repo: Path, session: str, start: str) -> WorkspaceBinding:
    top, common = discover(str(repo))
    b = WorkspaceBinding(session, "worktree", worktree_path(common, session), session, repo=top,
                         common_dir=common, branch=branch_for(session), start=start, state="pending")
    git_dir, base = worktrees.create(b)
    return WorkspaceBinding(**{**b.__dict__, "git_dir": git_dir, "base": base, "state": "active"})


def test_worktree_commit_and_merge_run_no_hook_fsmonitor_pager_or_signer(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "1\n2\n3\n"})
    marker = tmp_path / "RAN"
    trap(repo, marker)
    head = git(repo, "rev-parse", "HEAD")
    parent = own_tree(repo, sid(1), head)
    child = own_tree(repo, sid(2), parent.branch or "")
    Path(child.path, "a.txt").write_text("1\nTWO\n3\n")
    assert worktrees.commit(child, ["a.txt"], "child edit", AUTHOR) is not None
    state = worktrees.begin_merge(parent, child.branch or "")
    assert state.conflicts == []
    merged = worktrees.finish_merge(parent, "merge child", AUTHOR)
    assert git(repo, "log", "-1", "--format=%s%n%an", merged) == "merge child\nsessiontree test"
    worktrees.remove(child, AUTHOR)
    assert not marker.exists()


def test_the_hosts_git_environment_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = make_repo(tmp_path / "repo")
    decoy = make_repo(tmp_path / "decoy")
    monkeypatch.setenv("GIT_DIR", str(decoy / ".git"))
    monkeypatch.setenv("GIT_WORK_TREE", str(decoy))
    monkeypatch.setenv("GIT_INDEX_FILE", str(tmp_path / "index"))
    b = own_tree(repo, sid(3), "HEAD")
    Path(b.path, "new.txt").write_text("x\n")
    commit = worktrees.commit(b, ["new.txt"], "in the right repository", AUTHOR)
    monkeypatch.delenv("GIT_DIR")
    monkeypatch.delenv("GIT_WORK_TREE")
    monkeypatch.delenv("GIT_INDEX_FILE")
    assert git(repo, "rev-parse", branch_for(sid(3))) == commit
    assert git(decoy, "log", "--format=%s") == "initial"


def test_a_bare_repository_planted_in_a_worktree_is_never_discovered(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    b = own_tree(repo, sid(4), "HEAD")
    marker = tmp_path / "RAN"
    evil = Path(b.path, "evil")
    for d in ("objects", "refs"):
        (evil / d).mkdir(parents=True)
    (evil / "HEAD").write_text("ref: refs/heads/main\n")
    (evil / "config").write_text(f"[core]\n\tfsmonitor = touch {marker}\n\tbare = true\n")
    (evil / "x.txt").write_text("x\n")
    assert worktrees.commit(b, ["evil/x.txt"], "plant", AUTHOR) is not None
    assert not marker.exists()


@pytest.mark.parametrize("ref", ["--git-dir=/tmp", "-C/tmp", "main; rm -rf /", "sessiontree/x",
                                 "ses_1", "../../etc"])
def test_only_our_own_refs_reach_git(ref: str) -> None:
    with pytest.raises(WorkspaceError):
        check_ref(ref)


def test_a_conflicting_merge_is_aborted_leaving_the_parent_as_it_was(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "1\n2\n3\n"})
    parent = own_tree(repo, sid(5), "HEAD")
    left = own_tree(repo, sid(6), parent.branch or "")
    right = own_tree(repo, sid(7), parent.branch or "")
    for b, text in ((left, "1\nL\n3\n"), (right, "1\nR\n3\n")):
        Path(b.path, "a.txt").write_text(text)
        worktrees.commit(b, ["a.txt"], "edit", AUTHOR)
    worktrees.begin_merge(parent, left.branch or "")
    worktrees.finish_merge(parent, "left", AUTHOR)
    before = worktrees.head(parent)
    state = worktrees.begin_merge(parent, right.branch or "")
    assert state.conflicts == ["a.txt"]
    assert "<<<<<<<" in Path(parent.path, "a.txt").read_text()
    assert worktrees.merging(parent)  # what merge_child aborts first if a host died here
    worktrees.abort(parent)
    assert not worktrees.merging(parent)
    assert worktrees.head(parent) == before
    assert Path(parent.path, "a.txt").read_text() == "1\nL\n3\n"
    assert Git(parent.git_dir or "", parent.path).out("status", "--porcelain") == ""


def test_worktrees_live_under_the_git_dir_out_of_every_checkout(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    b = own_tree(repo, sid(8), "HEAD")
    assert Path(b.path).is_relative_to(repo / ".git")
    assert git(repo, "status", "--porcelain") == ""
    assert os.path.isfile(Path(b.path, ".git"))
