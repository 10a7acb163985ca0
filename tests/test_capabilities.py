"""Capability tokens: the intersection down the tree, revocation, expiry, deny by default
for every tool, scoped file capabilities, and the gate as the only way a tool runs."""

from __future__ import annotations

import ast
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs
from pydantic import BaseModel

import sessiontree as st
from sessiontree.persistence.capabilities import CapabilityToken
from sessiontree.testing import ManualClock
from sessiontree.tools import scopes
from sessiontree.tools.builtin import BUILTIN_TOOLS
from sessiontree.tools.files import workspace_tools
from sessiontree.tools.gate import Permit, judge
from sessiontree.tools.registry import ToolRegistry
from sessiontree.tools.tokens import derive

WAIT = 20.0
PACKAGE = Path(__file__).resolve().parent.parent / "sessiontree"


class NoteArgs(BaseModel):
    text: str = ""


def note_tool(name: str, ran: list[str], capability: str | None = None,
              hold: threading.Event | None = None) -> st.Tool:
    def fn(ctx: st.ToolContext, args: NoteArgs) -> str:
        ran.append(ctx.session_id)
        if hold is not None:
            assert hold.wait(WAIT)
        return "noted"

    return st.tool(name, NoteArgs, effect="read_only", capability=capability)(fn)


def tool_results(rt: st.Runtime, sid: str) -> list[Any]:
    out = []
    for m in rt.messages(sid):
        if m.role == "tool":
            try:
                out.append(json.loads(m.body["content"]))
            except ValueError:
                out.append(m.body["content"])
    return out


def payloads(rt: st.Runtime, sid: str, kind: str) -> list[dict[str, Any]]:
    return [e.payload for e in rt.events(session_id=sid, type_prefix=kind)]


# -- the intersection: a child never holds more than its parent ------------------------------
NAMES = ["fs.read", "fs.write", "session.spawn", "tool:send", "net.http"]
SEGMENTS = ["src", "a", "b", "*", "**", "*.py", "x?", "c.py"]
patterns = hs.lists(hs.sampled_from(SEGMENTS), min_size=1, max_size=3).map("/".join)
capabilities = hs.builds(
    lambda name, scope: name if scope is None else f"{name}:{scope}",
    hs.sampled_from(NAMES), hs.none() | patterns)
paths = hs.lists(hs.sampled_from(["src", "a", "b", "c.py", "x1", "d"]), min_size=1, max_size=4).map("/".join)


def token(
    i: int, capability: str, *, revoked: bool = False, expires_at: float | None = None,
) -> CapabilityToken:
    return CapabilityToken(f"tok_{i}", "ses_p", "ses_p", capability, None, expires_at, revoked, None, 0.0)


@settings(max_examples=300, deadline=None)
@given(held=hs.lists(hs.tuples(capabilities, hs.booleans()), max_size=6),
       asked=hs.lists(capabilities, max_size=6), probes=hs.lists(paths, min_size=1, max_size=6))
def test_a_child_never_holds_more_than_its_parent(
    held: list[tuple[str, bool]], asked: list[str], probes: list[str],
) -> None:
    parent = [token(i, cap, revoked=dead) for i, (cap, dead) in enumerate(held)]
    live = [t.capability for t in parent if not t.revoked]
    derived = derive(asked, parent, now=1.0)
    child = derived.granted
    by_id = {t.id: t for t in parent}
    for grant in derived.grants:
        source = by_id[grant.derived_from]
        assert not source.revoked  # derived from a live token only
        assert scopes.covers(source.capability, grant.capability)  # narrowed, never widened
    # what the child may do, the parent may do: every concrete need the child's set covers
    for name in NAMES:
        needs = [name, *(scopes.scoped(name, p) for p in probes)]
        for need in needs:
            if scopes.covered(child, need):
                assert scopes.covered(live, need), (need, child, live)
    # every request is answered: granted (perhaps narrowed) or named as dropped
    for a in asked:
        assert a in derived.dropped or any(
            scopes.covers(a, g) or scopes.covers(g, a) for g in child)
        if scopes.covered(live, a):
            assert a in child  # a request the parent covers is granted as asked


def test_scopes_are_narrowed_to_the_intersection() -> None:
    parent = [token(0, "fs.write:src/**"), token(1, "session.spawn")]
    derived = derive(["fs.write:src/a/**", "fs.write", "fs.read", "session.spawn"], parent, 1.0)
    assert derived.granted == ("fs.write:src/a/**", "fs.write:src/**", "session.spawn")
    assert derived.dropped == ("fs.read",)


def test_a_child_token_expires_no_later_than_the_parents() -> None:
    (grant,) = derive(["tool:send"], [token(0, "tool:send", expires_at=50.0)], 1.0).grants
    assert grant.expires_at == 50.0
    assert derive(["tool:send"], [token(0, "tool:send", expires_at=0.5)], 1.0).dropped == ("tool:send",)


# -- deny by default, for every tool ---------------------------------------------------------
def test_every_builtin_and_user_tool_is_denied_without_a_covering_token(tmp_path: Path) -> None:
    ran: list[str] = []
    user_tools = [note_tool("send", ran), note_tool("kb", ran, capability="kb.read")]
    names = sorted({t.name for t in BUILTIN_TOOLS} | {t.name for t in workspace_tools(None)}  # type: ignore[arg-type]
                   | {t.name for t in user_tools})
    offered: list[list[str]] = []

    def policy(turn: st.ScriptTurn) -> st.ModelReply:
        offered.append([t.name for t in turn.request.tools])
        if turn.turn == 0:
            return st.reply("", *[st.call(n) for n in names])
        return st.reply("done")

    with st.Runtime.open(tmp_path / "t.db", providers=[st.ScriptedProvider(policy)],
                         tools=user_tools) as rt:
        sid = rt.create_session("t", workspace=tmp_path)
        assert rt.wait(sid, timeout=WAIT).state == "completed"
        results = tool_results(rt, sid)
        denied = payloads(rt, sid, "FR-EVT-SESS-TOOL-DENIED")
        intents = payloads(rt, sid, "FR-EVT-SESS-TOOL-INTENT")
    assert offered == [[], []]  # the model is offered nothing it may not call
    assert ran == [] and intents == []
    assert len(results) == len(names) == len(denied)
    reasons = {d["tool"]: d["reason"] for d in denied}
    assert reasons.pop("wait_for_children") == "no_children"
    assert set(reasons.values()) == {"capability_denied"}
    needed = {d["tool"]: d["capability"] for d in denied}
    assert (needed["send"], needed["kb"], needed["spawn_session"], needed["write_file"]) == (
        "tool:send", "kb.read", "session.spawn", "fs.write")


def test_a_tool_without_a_capability_needs_tool_name_and_names_its_token(tmp_path: Path) -> None:
    ran: list[str] = []
    offered: list[list[str]] = []

    def policy(turn: st.ScriptTurn) -> st.ModelReply:
        offered.append([t.name for t in turn.request.tools])
        return st.reply("", st.call("send")) if turn.turn == 0 else st.reply("done")

    with st.Runtime.open(tmp_path / "t.db", providers=[st.ScriptedProvider(policy)],
                         tools=[note_tool("send", ran)]) as rt:
        sid = rt.create_session("t", capabilities=["tool:send"])
        rt.wait(sid, timeout=WAIT)
        (tok,) = rt.capability_tokens(sid)
        (intent,) = payloads(rt, sid, "FR-EVT-SESS-TOOL-INTENT")
        assert rt.session(sid).capability_token_ids == (tok.id,)
    assert offered[0] == ["send"] and ran == [sid]
    assert (intent["capability"], intent["token_ids"]) == ("tool:send", [tok.id])


def test_scoped_file_capabilities_are_checked_against_each_calls_path(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()

    def policy(turn: st.ScriptTurn) -> st.ModelReply:
        if turn.turn == 0:
            return st.reply("", st.call("write_file", path="src/a.txt", content="a"),
                            st.call("write_file", path="docs/b.txt", content="b"),
                            st.call("read_file", path="src/a.txt"))
        return st.reply("done")

    with st.Runtime.open(tmp_path / "t.db", providers=[st.ScriptedProvider(policy)]) as rt:
        sid = rt.create_session("t", capabilities=["fs.write:src/**", "fs.read:src/**"], workspace=ws)
        rt.wait(sid, timeout=WAIT)
        held = {t.capability: t for t in rt.capability_tokens(sid)}
        write, read = held["fs.write:src/**"], held["fs.read:src/**"]
        ok, refused, readback = tool_results(rt, sid)
        (denied,) = payloads(rt, sid, "FR-EVT-SESS-TOOL-DENIED")
        intents = payloads(rt, sid, "FR-EVT-SESS-TOOL-INTENT")
    assert (ws / "src" / "a.txt").read_text() == "a" and not (ws / "docs").exists()
    assert refused["reason"] == "capability_denied" and "fs.write:docs/b.txt" in refused["error"]
    assert (denied["tool"], denied["capability"]) == ("write_file", "fs.write:docs/b.txt")
    assert [(i["tool"], i["token_ids"]) for i in intents] == [
        ("write_file", [write.id]), ("read_file", [read.id])]
    assert "error" not in ok and readback == "a"


def test_the_gate_denies_a_session_that_is_not_running() -> None:
    ran: list[str] = []
    registry = ToolRegistry([note_tool("send", ran)])
    for state in ("paused", "cancelled", "queued"):
        record: Any = type("S", (), {"id": "ses_1", "state": state, "spawn_count": 0})()
        decision = judge(registry, record, [token(0, "tool:send")], 1.0, st.call("send"))
        assert (decision.allowed, decision.reason) == (False, "session_not_running")


# -- no code path runs a tool without the gate -------------------------------------------------
def test_only_the_gates_permit_calls_a_tools_function() -> None:
    callers = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr == "fn":
                callers.append(path.relative_to(PACKAGE).as_posix())
    assert callers == ["tools/gate.py"]


def test_a_permit_cannot_be_made_outside_the_gate() -> None:
    t = note_tool("send", [])
    with pytest.raises(st.InvalidInput):
        Permit(object(), t, NoteArgs(), "tool:send", ())


# -- revocation and expiry ------------------------------------------------------------------------
def test_revoking_a_token_revokes_what_was_derived_from_it_and_denies_the_next_call(
    tmp_path: Path,
) -> None:
    ran: list[str] = []
    in_tool, release = threading.Event(), threading.Event()

    def hold_first(ctx: st.ToolContext, args: NoteArgs) -> str:
        ran.append(ctx.session_id)
        if len(ran) == 1:
            in_tool.set()
            assert release.wait(WAIT)
        return "noted"

    note = st.tool("note", NoteArgs, effect="read_only")(hold_first)

    def policy(turn: st.ScriptTurn) -> st.ModelReply:
        if turn.role == "root":
            if turn.turn == 0:
                return st.reply("", st.call("spawn_session", role="child", task="c",
                                            capabilities=["session.spawn", "tool:note"]))
            if turn.turn == 1:
                return st.reply("", st.call("wait_for_children"))
            return st.reply("root done")
        if turn.role == "child":
            if turn.turn == 0:
                return st.reply("", st.call("spawn_session", role="grandchild", task="g",
                                            capabilities=["tool:note"]))
            if turn.turn == 1:
                return st.reply("", st.call("wait_for_children"))
            return st.reply("child done")
        # the grandchild: one note (held until the host revoked), then another
        return st.reply("", st.call("note")) if turn.turn < 2 else st.reply("grandchild done")

    with st.Runtime.open(tmp_path / "t.db", providers=[st.ScriptedProvider(policy)],
                         tools=[note]) as rt:
        root = rt.create_session("r", capabilities=["session.spawn", "tool:note"])
        assert in_tool.wait(WAIT)
        (child,) = rt.children(root)
        (grandchild,) = rt.children(child.id)
        root_note = next(t for t in rt.capability_tokens(root) if t.capability == "tool:note")
        try:
            revoked = rt.revoke(root_note.id)
        finally:
            release.set()
        assert rt.wait(root, timeout=WAIT).state == "completed"

        chain = [next(t for t in rt.capability_tokens(s) if t.capability == "tool:note")
                 for s in (root, child.id, grandchild.id)]
        assert revoked == [t.id for t in chain]
        assert [t.derived_from for t in chain] == [None, chain[0].id, chain[1].id]
        assert all(t.revoked and not t.live for t in chain)
        events = payloads(rt, grandchild.id, "FR-EVT-SESS-CAPABILITY-REVOKED")
        assert events == [{"token_id": chain[2].id, "capability": "tool:note",
                           "reason": "revoked_by_host", "cascade_from": root_note.id}]
        (denied,) = payloads(rt, grandchild.id, "FR-EVT-SESS-TOOL-DENIED")
        assert (denied["reason"], denied["token_id"]) == ("capability_revoked", chain[2].id)
        assert rt.session(grandchild.id).capabilities == ()
        assert "tool:note" not in rt.session(child.id).capabilities
        assert rt.revoke(root_note.id) == []  # idempotent
        with pytest.raises(st.InvalidInput):
            rt.revoke("tok_missing")
    assert ran == [grandchild.id]  # the call after the revocation never ran


def test_an_expired_token_is_not_offered_and_its_call_is_denied(tmp_path: Path) -> None:
    clock = ManualClock()
    ran: list[str] = []
    offered: list[list[str]] = []

    def note_then_time_passes(ctx: st.ToolContext, args: NoteArgs) -> str:
        ran.append(ctx.call_id)
        clock.advance(60)  # the token expires while the tool runs
        return "noted"

    note = st.tool("note", NoteArgs, effect="read_only")(note_then_time_passes)

    def policy(turn: st.ScriptTurn) -> st.ModelReply:
        offered.append([t.name for t in turn.request.tools])
        return st.reply("", st.call("note")) if turn.turn < 2 else st.reply("done")

    with st.Runtime.open(tmp_path / "t.db", providers=[st.ScriptedProvider(policy)],
                         tools=[note], clock=clock) as rt:
        sid = rt.create_session("t", capabilities=["tool:note"],
                                capabilities_expire_at=clock.now() + 30)
        assert rt.wait(sid, timeout=WAIT).state == "completed"
        (tok,) = rt.capability_tokens(sid)
        (denied,) = payloads(rt, sid, "FR-EVT-SESS-TOOL-DENIED")
        (expired,) = payloads(rt, sid, "FR-EVT-SESS-CAPABILITY-EXPIRED")
        assert rt.session(sid).capabilities == ()  # effective: nothing live
        assert expired == {"token_id": tok.id, "capability": "tool:note",
                           "expires_at": tok.expires_at, "call_id": denied["call_id"]}
    assert len(ran) == 1
    assert offered == [["note"], [], []]
    assert (denied["reason"], denied["token_id"]) == ("capability_expired", tok.id)
    assert not tok.live and not tok.revoked


def test_a_store_from_before_tokens_gets_its_live_sessions_grants_as_tokens(db_path: Path) -> None:
    from sessiontree.persistence import open_store

    def policy(turn: st.ScriptTurn) -> st.ModelReply:
        if turn.role != "root":
            return st.reply("child done")
        if turn.turn == 0:
            return st.reply("", st.call("spawn_session", role="c", task="c",
                                        capabilities=["session.spawn"]))
        return st.reply("", st.call("wait_for_children")) if turn.turn == 1 else st.reply("done")

    with st.Runtime.open(db_path, providers=[st.ScriptedProvider(policy)]) as rt:
        root = rt.create_session("r", capabilities=["session.spawn", "tool:x"], start=False)
    store = open_store(db_path)  # as an older sessiontree left it: no token rows
    store.execute_raw_for_tests('DELETE FROM "capability_token"')
    store.close()
    with st.Runtime.open(db_path, providers=[st.ScriptedProvider(policy)]) as rt:
        assert [t.capability for t in rt.capability_tokens(root)] == ["session.spawn", "tool:x"]
        rt.enqueue(root)
        assert rt.wait(root, timeout=WAIT).state == "completed"
        (child,) = rt.children(root)
        (derived,) = rt.capability_tokens(child.id)
        assert derived.derived_from == rt.capability_tokens(root)[0].id
