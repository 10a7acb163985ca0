"""Worktree mode through the runtime: own worktrees made at spawn, isolated from each
other, merged explicitly (clean, or a conflict reported and then resolved), removed on
completion and kept on failure; no tool reaches the main checkout or git itself."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from workspace_support import git, make_repo, tool_results, trap

import sessiontree as st
from sessiontree._states import SessionState
from sessiontree.actors.ending import end_session
from sessiontree.persistence import open_store
from sessiontree.persistence import workspace as rows

RW = ["fs.read", "fs.write"]
SPAWN = ["session.spawn", *RW]


def spawn(role: str, task: str = "work") -> st.ToolCall:
    return st.call("spawn_session", role=role, task=task, capabilities=RW, workspace_mode="worktree")


def child_ids(turn: st.ScriptTurn) -> list[str]:
    return [json.loads(m.content)["child_id"] for m in turn.tool_results]


def worktree_events(rt: st.Runtime, session_id: str) -> list[dict[str, Any]]:
    return [e.payload for e in rt.events(session_id=session_id,
                                         type_prefix="FR-EVT-SESS-WORKSPACE-WORKTREE")]


def test_children_get_own_worktrees_isolated_from_each_other_and_removed_on_completion(
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n"})
    def policy(turn: st.ScriptTurn) -> st.ModelReply:
        if turn.role == "root":
            script = [
                lambda: st.reply("", spawn("writer")),
                lambda: st.reply("", st.call("wait_for_children")),
                lambda: st.reply("", spawn("looker")),
                lambda: st.reply("", st.call("wait_for_children")),
                lambda: st.reply("", st.call("read_file", path="new.txt")),
            ]
            return script[turn.turn]() if turn.turn < len(script) else st.reply("root done")
        if turn.role == "writer":
            return (st.reply("", st.call("write_file", path="new.txt", content="from writer\n"))
                    if turn.turn == 0 else st.reply("writer wrote new.txt"))
        return (st.reply("", st.call("read_file", path="new.txt"), st.call("list_dir"))
                if turn.turn == 0 else st.reply("looker looked"))

    with st.Runtime.open(tmp_path / "t.db", providers=[st.ScriptedProvider(policy)]) as rt:
        root = rt.create_session("go", capabilities=SPAWN, workspace=repo, workspace_mode="worktree")
        assert rt.wait(root, timeout=60).state == "completed"
        writer, looker = (c.session.id for c in rt.tree(root)[0].children)
        looked, listed = tool_results(rt, looker)
        [root_read] = tool_results(rt, root, "read_file")
        created = worktree_events(rt, writer)
    assert not looked["ok"] and "no such file" in looked["value"]["error"]  # the sibling's write
    assert [e["name"] for e in listed["value"]["entries"]] == ["a.txt"]
    assert not root_read["ok"]  # nor in the parent's worktree, until merged
    assert [e["action"] for e in created] == ["created", "removed"]
    assert created[0]["branch"] == f"sessiontree/{writer}"
    assert not Path(created[0]["path"]).exists()  # removed on completion...
    assert git(repo, "show", f"sessiontree/{writer}:new.txt") == "from writer"  # ...its branch kept
    assert git(repo, "status", "--porcelain") == "" and sorted(p.name for p in repo.iterdir()) == [
        ".git", "a.txt"]


def test_clean_merges_are_committed_and_a_conflict_is_reported_then_resolved(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"greet.txt": "hello\nworld\n"})
    edits = {"upper": "HELLO\nworld\n", "casual": "hi\nworld\n"}

    def policy(turn: st.ScriptTurn) -> st.ModelReply:
        if turn.role == "root":
            if turn.turn == 0:
                return st.reply("", spawn("upper"), spawn("adder"), spawn("casual"))
            if turn.turn == 1:
                return st.reply("", st.call("wait_for_children"))
            if turn.turn == 2:
                kids = [c["child_id"] for c in turn.result_json()["children"]]
                return st.reply("", *[st.call("merge_child", child_id=k) for k in kids])
            if turn.turn == 3:
                failed = json.loads(turn.tool_results[-1].content)["details"]
                text = "HELLO and hi\nworld\n"
                return st.reply("", st.call("merge_child", child_id=failed["child_id"],
                                            resolutions={p: text for p in failed["paths"]}))
            if turn.turn == 4:
                return st.reply("", st.call("read_file", path="greet.txt"))
            return st.reply("merged all three")
        if turn.turn == 0:
            if turn.role == "adder":
                return st.reply("", st.call("write_file", path="more.txt", content="more\n"))
            return st.reply("", st.call("write_file", path="greet.txt", content=edits[turn.role]))
        return st.reply(f"{turn.role}: edited the greeting")

    with st.Runtime.open(tmp_path / "t.db", providers=[st.ScriptedProvider(policy)]) as rt:
        root = rt.create_session("go", capabilities=SPAWN, workspace=repo, workspace_mode="worktree")
        assert rt.wait(root, timeout=60).state == "completed"
        upper, adder, casual = (c.session.id for c in rt.tree(root)[0].children)
        merges = tool_results(rt, root, "merge_child")
        [final] = tool_results(rt, root, "read_file")
        conflict = rt.events(session_id=root, type_prefix="FR-EVT-SESS-WORKSPACE-CONFLICT")
        merged = rt.events(session_id=root, type_prefix="FR-EVT-SESS-WORKSPACE-MERGED")
    first, second, third, resolved = merges
    assert first["ok"] and second["ok"] and not third["ok"] and resolved["ok"]
    details = third["value"]["details"]
    assert third["value"]["reason"] == "workspace_conflict"
    assert details["kind"] == "merge" and details["paths"] == ["greet.txt"]
    assert details["child_id"] == casual and details["branch"] == f"sessiontree/{casual}"
    assert "<<<<<<<" in details["conflicts"]["greet.txt"] and "hi" in details["conflicts"]["greet.txt"]
    assert [e.payload["paths"] for e in conflict] == [["greet.txt"]]
    assert [e.payload["child_id"] for e in merged] == [upper, adder, casual]
    assert merged[-1].payload["resolved"] == ["greet.txt"]
    assert final["value"] == "HELLO and hi\nworld\n"
    branch = f"sessiontree/{root}"
    subjects = git(repo, "log", "--format=%s", "--merges", branch).splitlines()
    assert subjects == ["casual: edited the greeting", "adder: edited the greeting",
                        "upper: edited the greeting"]
    assert git(repo, "show", f"{branch}:more.txt") == "more"
    assert git(repo, "rev-parse", "main") == git(repo, "rev-list", "--max-parents=0", "main")


def test_a_failed_childs_worktree_is_kept_for_inspection_and_not_merged(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")

    def policy(turn: st.ScriptTurn) -> st.ModelReply:
        if turn.role == "root":
            steps = [lambda: st.reply("", spawn("doomed")),
                     lambda: st.reply("", st.call("wait_for_children")),
                     lambda: st.reply("", st.call("merge_child",
                                                  child_id=turn.result_json()["children"][0]["child_id"]))]
            return steps[turn.turn]() if turn.turn < len(steps) else st.reply("done")
        if turn.turn == 0:
            return st.reply("", st.call("write_file", path="half.txt", content="half\n"))
        raise RuntimeError("the provider blew up")

    limits = st.Limits(restart=st.RestartPolicy(max_restarts=0))
    with st.Runtime.open(tmp_path / "t.db", providers=[st.ScriptedProvider(policy)], limits=limits) as rt:
        root = rt.create_session("go", capabilities=SPAWN, workspace=repo, workspace_mode="worktree")
        rt.wait(root, timeout=60)
        [doomed] = [c.session for c in rt.tree(root)[0].children]
        [refused] = tool_results(rt, root, "merge_child")
        [created] = worktree_events(rt, doomed.id)
    assert doomed.state == "failed"
    assert Path(created["path"], "half.txt").read_text() == "half\n"
    assert not refused["ok"] and "kept at" in refused["value"]["error"]


def test_no_tool_reaches_the_main_checkout_a_sibling_or_git_itself(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "main checkout\n"})
    (repo / "up").symlink_to("../../../..")  # from a worktree: the main checkout
    git(repo, "add", "up")
    git(repo, "commit", "-q", "-m", "a symlink that leads out of a worktree")
    marker = tmp_path / "RAN"
    trap(repo, marker)
    attempts: list[st.ToolCall] = []

    def policy(turn: st.ScriptTurn) -> st.ModelReply:
        if turn.role == "root":
            if turn.turn == 0:
                return st.reply("", spawn("sibling"), spawn("attacker"))
            if turn.turn == 1:
                return st.reply("", st.call("wait_for_children"))
            return st.reply("done")
        if turn.role == "sibling":
            return st.reply("", st.call("write_file", path="s.txt", content="s\n")) \
                if turn.turn == 0 else st.reply("sibling done")
        if turn.turn == 0:
            attempts[:] = [
                st.call("write_file", path=".git", content="gitdir: /tmp\n"),
                st.call("write_file", path=".git/config", content="[core]\n"),
                st.call("write_file", path="x/.git/hooks/post-commit", content="#!/bin/sh\n"),
                st.call("read_file", path="../../../../a.txt"),
                st.call("read_file", path=str(repo / "a.txt")),
                st.call("read_file", path="up/a.txt"),
                st.call("write_file", path="up/a.txt", content="pwned\n"),
                st.call("list_dir", path=".."),
                st.call("merge_child", child_id="--git-dir=/tmp"),
                st.call("merge_child", child_id="-C/tmp"),
                st.call("merge_child", child_id=turn.session_id),
            ]
            return st.reply("", *attempts)
        return st.reply("attacker done")

    with st.Runtime.open(tmp_path / "t.db", providers=[st.ScriptedProvider(policy)]) as rt:
        root = rt.create_session("go", capabilities=SPAWN, workspace=repo, workspace_mode="worktree")
        assert rt.wait(root, timeout=60).state == "completed"
        sibling, attacker = (c.session.id for c in rt.tree(root)[0].children)
        results = tool_results(rt, attacker)
        sibling_tree = worktree_events(rt, sibling)[0]["path"]
    assert not marker.exists()  # no hook, fsmonitor, pager, editor or signer ran
    assert len(results) == len(attempts)
    for call, result in zip(attempts, results, strict=True):
        assert not result["ok"], (call, result)
    assert [r["value"]["reason"] for r in results[:8]] == ["path_refused"] * 8
    assert "not a child of this session" in results[-1]["value"]["error"]
    assert (repo / "a.txt").read_text() == "main checkout\n"
    assert not Path(sibling_tree).exists()  # completed: removed
    assert git(repo, "ls-tree", "--name-only", f"sessiontree/{sibling}").split() == ["a.txt", "s.txt", "up"]
    assert git(repo, "-c", "core.fsmonitor=false", "status", "--porcelain") == ""


@pytest.mark.parametrize("child_id", ["--git-dir=/tmp", "ses_" + "0" * 20])
def test_merge_child_refuses_what_is_not_a_completed_own_worktree_child(
    tmp_path: Path, child_id: str,
) -> None:
    repo = make_repo(tmp_path / "repo")

    def policy(turn: st.ScriptTurn) -> st.ModelReply:
        if turn.turn == 0:
            return st.reply("", st.call("merge_child", child_id=child_id))
        return st.reply("done")

    with st.Runtime.open(tmp_path / "t.db", providers=[st.ScriptedProvider(policy)]) as rt:
        root = rt.create_session("go", capabilities=SPAWN, workspace=repo, workspace_mode="worktree")
        rt.wait(root, timeout=30)
        [refused] = tool_results(rt, root, "merge_child")
    assert not refused["ok"] and "no session" in refused["value"]["error"]


def test_a_worktree_git_cannot_make_fails_the_spawn_and_the_root_cleanly(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")

    def policy(turn: st.ScriptTurn) -> st.ModelReply:
        if turn.role == "root" and turn.turn == 0:  # the child's start point disappears
            git(repo, "update-ref", "-d", f"refs/heads/sessiontree/{turn.session_id}")
            return st.reply("", spawn("child"))
        return st.reply("done")

    with st.Runtime.open(tmp_path / "t.db", providers=[st.ScriptedProvider(policy)]) as rt:
        root = rt.create_session("go", capabilities=SPAWN, workspace=repo, workspace_mode="worktree")
        assert rt.wait(root, timeout=30).state == "completed"
        [spawned] = tool_results(rt, root, "spawn_session")
        [child] = rt.tree(root)[0].children
        assert not spawned["ok"] and spawned["value"]["reason"] == "workspace_unavailable"
        assert (child.session.state, child.session.reason) == ("failed", "workspace_unavailable")

        blocked = make_repo(tmp_path / "blocked")
        (blocked / ".git" / "sessiontree").write_text("in the way")
        with pytest.raises(st.WorkspaceError, match="cannot make the worktree"):
            rt.create_session("go", workspace=blocked, workspace_mode="worktree")
        [failed] = [n.session for n in rt.tree() if n.session.workspace and "blocked" in n.session.workspace]
        assert (failed.state, failed.reason) == ("failed", "workspace_unavailable")


def test_opening_the_store_finishes_what_a_dead_host_left_of_its_worktrees(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    db = tmp_path / "t.db"
    provider = st.ScriptedProvider(lambda turn: st.reply("done"))
    with st.Runtime.open(db, providers=[provider]) as rt:
        done = rt.create_session("a", workspace=repo, workspace_mode="worktree", start=False)
        pending = rt.create_session("b", workspace=repo, workspace_mode="worktree", start=False)
        done_path, pending_path = (rt.session(s).workspace for s in (done, pending))
    # What a host killed at the wrong moments leaves: a session completed with its worktree
    # still there, and a live session whose worktree was never made.
    git(repo, "worktree", "remove", "--force", str(pending_path))
    store = open_store(db)
    try:
        with store.transaction() as tx:
            for state in (SessionState.QUEUED, SessionState.RUNNING):
                tx.set_state(done, state)
            end_session(tx, done, SessionState.COMPLETED, "completed")
            rows.update_binding(tx, pending, state="pending", git_dir=None)
    finally:
        store.close()
    assert Path(str(done_path)).exists() and not Path(str(pending_path)).exists()
    with st.Runtime.open(db, providers=[provider]) as rt:
        assert [e["action"] for e in worktree_events(rt, done)] == ["created", "removed"]
        assert [e["action"] for e in worktree_events(rt, pending)] == ["created", "created"]
    assert not Path(str(done_path)).exists() and Path(str(pending_path), "README.md").exists()
