"""Consent for cloud providers: a session waits in ``awaiting_consent`` until its tree
has consent for its provider; grant, deny, up-front consent, revoke, and the CLI."""

from __future__ import annotations

import contextlib
import io
import threading
from pathlib import Path
from typing import Any

from pydantic import BaseModel

import sessiontree as st
from sessiontree.console.cli import main
from sessiontree.supervision.consent import verdict

WAIT = 20.0


def cloud(policy: Any, name: str = "cloud") -> st.ScriptedProvider:
    provider = st.ScriptedProvider(policy, name=name)
    provider.local = False  # as a real adapter pointed at a remote host says
    return provider


def counted(answer: str = "answered") -> tuple[Any, list[str]]:
    calls: list[str] = []

    def policy(turn: st.ScriptTurn) -> str:
        calls.append(turn.session_id)
        return answer

    return policy, calls


def types(rt: st.Runtime, sid: str, prefix: str) -> list[str]:
    return [e.type for e in rt.events(session_id=sid, type_prefix=prefix)]


def cli(*argv: str | Path) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main([str(a) for a in argv])
    return code, out.getvalue()


def test_the_decision_table() -> None:
    assert [verdict(True, c) for c in (None, "denied", "revoked")] == ["dispatch"] * 3
    assert [verdict(False, c) for c in (None, "granted", "denied", "revoked")] == [
        "wait", "dispatch", "fail", "wait"]


def test_a_cloud_session_waits_for_consent_without_a_job_and_runs_once_granted(db_path: Path) -> None:
    policy, calls = counted()
    with st.Runtime.open(db_path, providers=[cloud(policy)]) as rt:
        sid = rt.create_session("t")
        held = rt.wait_state(sid, "awaiting_consent", timeout=WAIT)
        assert (held.state, held.reason) == ("awaiting_consent", "consent_required")
        assert calls == []
        assert [j.state for j in rt.jobs(session_id=sid)] == ["cancelled"]  # no job, no thread
        assert rt.stats().running == 0
        (asked,) = [e.payload for e in rt.events(session_id=sid,
                                                 type_prefix="FR-EVT-SESS-CONSENT-REQUESTED")]
        assert asked == {"provider": "cloud", "root_id": sid}
        assert rt.tree(sid)[0].session.state == "awaiting_consent"  # visible in the tree

        assert rt.grant_consent(sid) == [sid]
        assert rt.wait(sid, timeout=WAIT).state == "completed"
        assert rt.consents(sid) == {"cloud": "granted"}
        assert "FR-EVT-SESS-CONSENT-GRANTED" in types(rt, sid, "FR-EVT-SESS-CONSENT")
    assert calls == [sid]


def test_denied_consent_fails_the_session_with_consent_denied(db_path: Path) -> None:
    policy, calls = counted()
    with st.Runtime.open(db_path, providers=[cloud(policy)]) as rt:
        sid = rt.create_session("t")
        rt.wait_state(sid, "awaiting_consent", timeout=WAIT)
        assert rt.deny_consent(sid) == [sid]
        info = rt.wait(sid, timeout=WAIT)
        assert (info.state, info.reason) == ("failed", "consent_denied")
        later = rt.create_session("t")  # a new tree asks on its own
        assert rt.wait_state(later, "awaiting_consent", timeout=WAIT).state == "awaiting_consent"
    assert calls == []


def test_consent_given_up_front_covers_the_whole_tree_and_local_providers_need_none(
    db_path: Path,
) -> None:
    def policy(turn: st.ScriptTurn) -> Any:
        if turn.role == "root" and turn.turn == 0:
            return st.reply("", st.call("spawn_session", role="cloudy", task="c"),
                            st.call("spawn_session", role="local", task="l", provider="local"))
        if turn.role == "root" and turn.turn == 1:
            return st.reply("", st.call("wait_for_children"))
        return f"{turn.role} done"

    local = st.ScriptedProvider(policy, name="local")
    with st.Runtime.open(db_path, providers=[cloud(policy), local]) as rt:
        root = rt.create_session("r", provider="cloud", capabilities=["session.spawn"],
                                 consent=["cloud"])
        assert rt.wait(root, timeout=WAIT).state == "completed"
        assert [c.state for c in rt.children(root)] == ["completed", "completed"]
        for s in rt.tree(root)[0].walk():
            assert types(rt, s.id, "FR-EVT-SESS-CONSENT-REQUESTED") == []


class HoldArgs(BaseModel):
    pass


def test_revoked_consent_lets_the_running_call_finish_and_dispatches_nothing_new(
    db_path: Path,
) -> None:
    in_tool, release = threading.Event(), threading.Event()
    turns: list[int] = []

    @st.tool("hold", HoldArgs, effect="read_only")
    def hold(ctx: st.ToolContext, args: HoldArgs) -> str:
        in_tool.set()
        assert release.wait(WAIT)
        return "held"

    def policy(turn: st.ScriptTurn) -> Any:
        turns.append(turn.turn)
        return st.reply("", st.call("hold")) if turn.turn == 0 else "done"

    with st.Runtime.open(db_path, providers=[cloud(policy)], tools=[hold]) as rt:
        sid = rt.create_session("t", capabilities=["tool:hold"], consent=["cloud"])
        assert in_tool.wait(WAIT)
        rt.revoke_consent(sid)
        release.set()
        held = rt.wait_state(sid, "awaiting_consent", timeout=WAIT)
        assert held.reason == "consent_required"
        assert [m.role for m in rt.messages(sid)][-1] == "tool"  # the call finished
        assert turns == [0]
        rt.grant_consent(sid, "cloud")
        assert rt.wait(sid, timeout=WAIT).state == "completed"
    assert turns == [0, 1]


def test_the_cli_grants_consent_through_a_live_host_or_decides_with_none(tmp_path: Path) -> None:
    policy, calls = counted()
    db = tmp_path / "t.db"
    with st.Runtime.open(db, providers=[cloud(policy)]) as rt:
        granted, denied = rt.create_session("a"), rt.create_session("b")
        for sid in (granted, denied):
            rt.wait_state(sid, "awaiting_consent", timeout=WAIT)
        code, out = cli("consent", "grant", "--db", db, granted)  # the host applies it
        assert code == 0 and out.startswith("applied: consent") and granted in out
        assert rt.wait(granted, timeout=WAIT).state == "completed"
    code, out = cli("consent", "deny", "--db", db, denied)
    assert code == 0 and f"session {denied} failed" in out
    with st.Runtime.open(db, providers=[cloud(policy)]) as rt:
        assert rt.session(granted).state == "completed"
        assert (rt.session(denied).state, rt.session(denied).reason) == ("failed", "consent_denied")
        by = [e.payload["by"] for e in rt.events(session_id=granted,
                                                 type_prefix="FR-EVT-SESS-CONSENT-GRANTED")]
        assert by == ["operator"]
    assert calls == [granted]


def test_the_cli_revokes_a_token_and_its_derived_tokens(tmp_path: Path) -> None:
    def policy(turn: st.ScriptTurn) -> Any:
        if turn.role == "root" and turn.turn == 0:
            return st.reply("", st.call("spawn_session", role="c", task="c",
                                        capabilities=["session.spawn"]))
        if turn.role == "root" and turn.turn == 1:
            return st.reply("", st.call("wait_for_children"))
        return "done"

    db = tmp_path / "t.db"
    with st.Runtime.open(db, providers=[st.ScriptedProvider(policy)]) as rt:
        root = rt.create_session("r", capabilities=["session.spawn"])
        rt.wait(root, timeout=WAIT)
        (child,) = rt.children(root)
        (token,) = rt.capability_tokens(root)
    code, out = cli("revoke", "--db", db, token.id)
    assert code == 0 and out.count("revoked tok_") == 2
    assert cli("revoke", "--db", db, "tok_missing")[0] == 2
    with st.Runtime.open(db, providers=[st.ScriptedProvider(policy)]) as rt:
        (derived,) = rt.capability_tokens(child.id)
        assert derived.revoked and derived.revoked_reason == "revoked_by_operator"
        assert rt.session(child.id).capabilities == ()
