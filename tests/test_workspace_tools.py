"""The workspace tools through the Tool Gate: scoped fs.* capabilities, every refusal an
error result naming the path, results stored as untrusted."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from workspace_support import tool_results

import sessiontree as st
from sessiontree.testing import Commits
from sessiontree.tools import scopes

RW = ["fs.read", "fs.write"]


@pytest.mark.parametrize(("held", "needed", "expected"), [
    ("fs.write", "fs.write:src/a.py", True),
    ("fs.write:**", "fs.write:src/a.py", True),
    ("fs.write:src/**", "fs.write:src/a.py", True),
    ("fs.write:src/**", "fs.write:docs/a.md", False),
    ("fs.write:src/**", "fs.write", False),
    ("fs.read:**", "fs.write:a", False),
    ("fs.write:src/**", "fs.write:src/*.py", True),
    ("fs.write:src/*.py", "fs.write:src/**", False),
    ("session.spawn", "session.spawn", True),
    ("session.spawn", "session.spawn:x", False),
    ("fs.write:/abs", "fs.write:/abs", True),  # equal strings; a bad scope covers nothing else
    ("fs.write:/abs", "fs.write:abs", False),
])
def test_covers_table(held: str, needed: str, expected: bool) -> None:
    assert scopes.covers(held, needed) is expected


def scripted(calls_by_role: dict[str, list[list[st.ToolCall]]]) -> st.ScriptedProvider:
    """Each role makes the given calls, one list a turn, then answers 'done'."""

    def policy(turn: st.ScriptTurn) -> st.ModelReply:
        turns = calls_by_role.get(turn.role, [])
        if turn.turn < len(turns):
            return st.reply("", *turns[turn.turn])
        return st.reply("done")

    return st.ScriptedProvider(policy)


def run(tmp_path: Path, calls: list[list[st.ToolCall]], caps: list[str],
        workspace: Path | None = None) -> tuple[list[dict[str, Any]], st.SessionInfo, Path]:
    ws = workspace or tmp_path / "ws"
    ws.mkdir(exist_ok=True)
    with st.Runtime.open(tmp_path / "t.db", providers=[scripted({"worker": calls})]) as rt:
        sid = rt.create_session("work", role="worker", capabilities=caps, workspace=ws,
                                budget=st.Budget(model_runs=20))
        info = rt.wait(sid, timeout=30)
        return tool_results(rt, sid), info, ws


def test_write_read_list_patch_delete_round_trip_with_untrusted_results(tmp_path: Path) -> None:
    patch = "--- a/notes.md\n+++ b/notes.md\n@@ -1,2 +1,2 @@\n first\n-second\n+SECOND\n"
    results, info, ws = run(tmp_path, [
        [st.call("write_file", path="notes.md", content="first\nsecond\n")],
        [st.call("apply_patch", patch=patch), st.call("read_file", path="notes.md")],
        [st.call("list_dir"), st.call("write_file", path="d/x.txt", content="x"),
         st.call("delete_file", path="d/x.txt")],
    ], RW)
    assert info.state == "completed"
    assert [r["ok"] for r in results] == [True] * 6
    assert {r["trust"] for r in results} == {"untrusted"}
    assert results[0]["value"] == {"path": "notes.md", "bytes": 13, "created": True, "commit": None}
    assert results[1]["value"]["files"] == [{"path": "notes.md", "action": "modified"}]
    assert results[2]["value"] == "first\nSECOND\n"
    assert results[3]["value"]["entries"] == [{"name": "notes.md", "type": "file", "size": 13}]
    assert (ws / "notes.md").read_text() == "first\nSECOND\n" and not (ws / "d" / "x.txt").exists()


def test_hostile_paths_through_the_tools_are_error_results_and_the_session_goes_on(
    tmp_path: Path,
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("s")
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "link").symlink_to(outside)
    os.mkfifo(ws / "fifo")
    hostile = ["/etc/passwd", "../outside/secret", "a/../../b", "link/secret", "x\x00y",
               ".git/config", "fifo", "p" * 5000]
    results, info, _ = run(tmp_path, [
        [st.call("read_file", path=p) for p in hostile],
        [st.call("write_file", path=p, content="pwned") for p in hostile],
    ], RW, ws)
    assert info.state == "completed"
    assert len(results) == 2 * len(hostile) and not any(r["ok"] for r in results)
    for r in results:
        assert r["value"]["reason"] == "path_refused", r
        assert r["value"]["error"].startswith("path refused: ")
    assert (outside / "secret").read_text() == "s"


def test_a_scoped_session_writes_inside_its_scope_only_even_through_a_symlink(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (ws / "src").mkdir(parents=True)
    (ws / "docs").mkdir()
    (ws / "docs" / "guide.md").write_text("guide")
    (ws / "src" / "to_docs").symlink_to("../docs/guide.md")  # inside the root, outside the scope
    results, info, _ = run(tmp_path, [[
        st.call("write_file", path="src/ok.py", content="ok"),
        st.call("write_file", path="docs/guide.md", content="no"),
        st.call("write_file", path="src/to_docs", content="no"),
        st.call("read_file", path="docs/guide.md"),
    ]], ["fs.read:**", "fs.write:src/**"], ws)
    assert info.state == "completed"
    ok, gate_denied, op_denied, read = results
    assert ok["ok"] and read["ok"] and read["value"] == "guide"
    assert gate_denied["value"]["reason"] == "capability_denied"
    assert "fs.write:docs/guide.md" in gate_denied["value"]["error"]
    assert op_denied["value"]["reason"] == "capability_denied"
    assert op_denied["value"]["details"] == {"path": "docs/guide.md"}
    assert (ws / "docs" / "guide.md").read_text() == "guide"


def test_file_tools_are_offered_by_capability_family(tmp_path: Path) -> None:
    seen: dict[str, list[str]] = {}

    def policy(turn: st.ScriptTurn) -> st.ModelReply:
        seen[turn.role] = sorted(t.name for t in turn.request.tools)
        return st.reply("done")

    with st.Runtime.open(tmp_path / "t.db", providers=[st.ScriptedProvider(policy)]) as rt:
        for role, caps in (("none", []), ("reader", ["fs.read:docs/**"]), ("writer", ["fs.write"])):
            rt.wait(rt.create_session("x", role=role, capabilities=caps, workspace=tmp_path), timeout=30)
    assert seen["none"] == []  # deny by default; wait_for_children only with children
    assert seen["reader"] == ["lease_paths", "list_dir", "read_file"]
    assert seen["writer"] == ["apply_patch", "delete_file", "merge_child", "write_file"]


def test_a_child_may_narrow_a_scope_and_a_wider_ask_is_narrowed_to_the_parents(
    tmp_path: Path,
) -> None:
    def policy(turn: st.ScriptTurn) -> st.ModelReply:
        if turn.role == "root" and turn.turn == 0:
            return st.reply("", st.call("spawn_session", role="narrow", task="t",
                                        capabilities=["fs.write:src/**"]),
                            st.call("spawn_session", role="wide", task="t",
                                    capabilities=["fs.write", "fs.read"]))
        return st.reply("done")

    with st.Runtime.open(tmp_path / "t.db", providers=[st.ScriptedProvider(policy)]) as rt:
        root = rt.create_session("x", capabilities=["session.spawn", "fs.write:src/**"],
                                 workspace=tmp_path)
        rt.wait(root, timeout=30)
        narrow, wide = tool_results(rt, root, "spawn_session")
        kids = {c.role: c.capabilities for c in rt.children(root)}
    assert narrow["ok"] and wide["ok"]
    assert narrow["value"]["capabilities_granted"] == ["fs.write:src/**"]
    assert wide["value"]["capabilities_granted"] == ["fs.write:src/**"]  # narrowed, not widened
    assert wide["value"]["capabilities_dropped"] == ["fs.read"]
    assert kids == {"narrow": ("fs.write:src/**",), "wide": ("fs.write:src/**",)}


def test_spawn_session_offers_the_workspace_mode_and_a_locked_parent_cannot_give_a_worktree(
    tmp_path: Path,
) -> None:
    schema: dict[str, Any] = {}

    def policy(turn: st.ScriptTurn) -> st.ModelReply:
        if turn.role == "root" and turn.turn == 0:
            schema.update(next(t.input_schema for t in turn.request.tools if t.name == "spawn_session"))
            return st.reply("", st.call("spawn_session", role="c", task="t", workspace_mode="worktree"))
        return st.reply("done")

    with st.Runtime.open(tmp_path / "t.db", providers=[st.ScriptedProvider(policy)]) as rt:
        root = rt.create_session("x", capabilities=["session.spawn"], workspace=tmp_path)
        rt.wait(root, timeout=30)
        [spawned] = tool_results(rt, root, "spawn_session")
    assert schema["properties"]["workspace_mode"]["enum"] == ["shared", "worktree"]
    assert not spawned["ok"] and spawned["value"]["reason"] == "workspace_unavailable"


def test_a_host_tool_may_take_the_name_of_a_built_in_file_tool(tmp_path: Path) -> None:
    class Args(BaseModel):
        path: str

    @st.tool("read_file", Args, effect="read_only", capability="fs.read")
    def mine(ctx: st.ToolContext, args: Any) -> str:
        return "from the host's tool"

    results, _, _ = run_with_tools(tmp_path, [mine], [[st.call("read_file", path="x")]])
    assert results[0]["value"] == "from the host's tool"
    with pytest.raises(st.InvalidInput, match="already registered"), st.Runtime.open(
            tmp_path / "u.db", tools=[mine, mine], providers=[scripted({})]):
        pass


def run_with_tools(tmp_path: Path, tools: list[st.Tool], calls: list[list[st.ToolCall]]
                   ) -> tuple[list[dict[str, Any]], st.SessionInfo, Path]:
    with st.Runtime.open(tmp_path / "t.db", providers=[scripted({"worker": calls})],
                         tools=tools) as rt:
        sid = rt.create_session("w", role="worker", capabilities=RW, workspace=tmp_path)
        info = rt.wait(sid, timeout=30)
        return tool_results(rt, sid), info, tmp_path


def test_create_session_checks_the_workspace_mode(tmp_path: Path) -> None:
    with st.Runtime.open(tmp_path / "t.db", providers=[scripted({})]) as rt:
        with pytest.raises(st.InvalidInput, match="workspace_mode"):
            rt.create_session("x", workspace=tmp_path, workspace_mode="shared")
        with pytest.raises(st.InvalidInput, match="git repository"):
            rt.create_session("x", workspace=tmp_path, workspace_mode="worktree")


def test_lease_paths_claims_globs_up_front_and_a_patch_is_all_or_nothing(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (ws / "src").mkdir(parents=True)
    (ws / "docs").mkdir()
    (ws / "docs" / "a.md").write_text("a\n")
    (ws / "free.txt").write_text("free\n")
    patch = ("--- a/free.txt\n+++ b/free.txt\n@@ -1 +1 @@\n-free\n+changed\n"
             "--- a/src/x.py\n+++ b/src/x.py\n@@ -0,0 +1 @@\n+x = 1\n")
    calls = {
        "claimer": [[st.call("lease_paths", paths=["src/**"]),
                     st.call("lease_paths", paths=["docs/*.md"], mode="read")]],
        "other": [[st.call("write_file", path="src/new.py", content="x"),
                   st.call("write_file", path="docs/a.md", content="b"),
                   st.call("read_file", path="docs/a.md"),
                   st.call("apply_patch", patch=patch)]],
    }
    def policy(turn: st.ScriptTurn) -> st.ModelReply:
        turns = calls[turn.role]
        return st.reply("", *turns[turn.turn]) if turn.turn < len(turns) else st.reply("done")

    def latency(request: st.ModelRequest) -> float:
        # sleep-ok: the claimer stays alive (its leases held) until it is cancelled
        return 600.0 if request.role == "claimer" and len(request.messages) > 2 else 0.0

    with st.Runtime.open(tmp_path / "t.db", providers=[st.ScriptedProvider(policy, latency=latency)]) as rt:
        claimer = rt.create_session("c", role="claimer", capabilities=RW, workspace=ws)
        Commits(rt).until(lambda: len(tool_results(rt, claimer)) == 2)
        other = rt.create_session("o", role="other", capabilities=RW, workspace=ws)
        rt.wait(other, timeout=30)
        claimed, read_lease = tool_results(rt, claimer)
        src, doc, read, patched = tool_results(rt, other)
        rt.cancel(claimer)
    assert claimed["value"] == {"mode": "write", "leased": ["src/**"], "already_held": []}
    assert read_lease["ok"] and read["ok"] and read["value"] == "a\n"  # reads share
    for refused, pattern, mode in ((src, "src/**", "write"), (doc, "docs/*.md", "read"),
                                   (patched, "src/**", "write")):
        assert not refused["ok"]
        details = refused["value"]["details"]
        assert (details["holder_session_id"], details["lease_pattern"], details["lease_mode"]) == (
            claimer, pattern, mode)
    assert (ws / "free.txt").read_text() == "free\n"  # the patch changed nothing
    assert sorted(p.name for p in (ws / "src").iterdir()) == []
