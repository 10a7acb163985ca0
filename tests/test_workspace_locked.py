"""Locked mode through the runtime: racing sessions on real actor threads, and leases
released when a session completes, is cancelled, fails, or its host is killed."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from workspace_support import tool_results

import sessiontree as st
from sessiontree.testing import Commits

ROUNDS = 25


@pytest.mark.timeout(120)
def test_two_sessions_writing_one_path_exactly_one_wins_every_round(tmp_path: Path) -> None:
    barrier = threading.Barrier(2, timeout=20)

    def policy(turn: st.ScriptTurn) -> st.ModelReply:
        if turn.turn < ROUNDS:
            barrier.wait()  # both sessions ask for the same path at the same moment
            return st.reply("", st.call("write_file", path=f"round-{turn.turn}.txt",
                                        content=f"{turn.role} was here\n"))
        return st.reply("done")

    with st.Runtime.open(tmp_path / "t.db", providers=[st.ScriptedProvider(policy)]) as rt:
        sids = {role: rt.create_session("race", role=role, capabilities=["fs.write"],
                                        workspace=tmp_path, budget=st.Budget(model_runs=ROUNDS + 2))
                for role in ("left", "right")}
        for sid in sids.values():
            assert rt.wait(sid, timeout=90).state == "completed"
        results = {role: tool_results(rt, sid, "write_file") for role, sid in sids.items()}
        conflicts = rt.events(type_prefix="FR-EVT-SESS-WORKSPACE-CONFLICT")
    wins = {"left": 0, "right": 0}
    for n in range(ROUNDS):
        left, right = results["left"][n], results["right"][n]
        assert left["ok"] != right["ok"], n  # exactly one wins
        winner, loser = ("left", right) if left["ok"] else ("right", left)
        wins[winner] += 1
        details = loser["value"]["details"]
        assert loser["value"]["reason"] == "workspace_conflict"
        assert details["holder_session_id"] == sids[winner] and details["holder_role"] == winner
        assert details["path"] == f"round-{n}.txt" and details["lease_mode"] == "write"
        assert (tmp_path / f"round-{n}.txt").read_text() == f"{winner} was here\n"
    assert len(conflicts) == ROUNDS


def writer_then(tmp_path: Path, then: str) -> st.ScriptedProvider:
    """'holder' writes shared.txt, then answers (done), waits forever (block), or
    crashes (crash); 'other' writes shared.txt and answers."""

    def policy(turn: st.ScriptTurn) -> st.ModelReply:
        if turn.turn == 0:
            return st.reply("", st.call("write_file", path="shared.txt", content=turn.role))
        if turn.role == "holder" and then == "crash":
            raise RuntimeError("the provider blew up")
        return st.reply("done")

    def latency(request: st.ModelRequest) -> float:
        holding = request.role == "holder" and then == "block" and len(request.messages) > 2
        return 600.0 if holding else 0.0  # sleep-ok: a run parked until it is cancelled

    return st.ScriptedProvider(policy, latency=latency)


@pytest.mark.parametrize("ending", ["completed", "cancelled", "failed"])
def test_a_sessions_leases_are_released_when_it_ends(tmp_path: Path, ending: str) -> None:
    then = {"completed": "done", "cancelled": "block", "failed": "crash"}[ending]
    limits = st.Limits(restart=st.RestartPolicy(max_restarts=0))
    with st.Runtime.open(tmp_path / "t.db", providers=[writer_then(tmp_path, then)],
                         limits=limits) as rt:
        commits = Commits(rt)
        holder = rt.create_session("hold", role="holder", capabilities=["fs.write"], workspace=tmp_path)
        commits.until(lambda: tool_results(rt, holder, "write_file"))
        if ending == "cancelled":
            rt.cancel(holder)
        assert rt.wait(holder, timeout=30).state == ending
        other = rt.create_session("write", role="other", capabilities=["fs.write"], workspace=tmp_path)
        rt.wait(other, timeout=30)
        [written] = tool_results(rt, other, "write_file")
        [released] = rt.events(session_id=holder, type_prefix="FR-EVT-SESS-WORKSPACE-RELEASED")
    assert written["ok"], written
    assert released.payload == {"reason": f"session_{ending}", "patterns": ["shared.txt"]}
    assert (tmp_path / "shared.txt").read_text() == "other"


def test_a_lease_held_by_a_live_session_refuses_the_other_writer(tmp_path: Path) -> None:
    with st.Runtime.open(tmp_path / "t.db", providers=[writer_then(tmp_path, "block")]) as rt:
        commits = Commits(rt)
        holder = rt.create_session("hold", role="holder", capabilities=["fs.write"], workspace=tmp_path)
        commits.until(lambda: tool_results(rt, holder, "write_file"))
        other = rt.create_session("write", role="other", capabilities=["fs.write"], workspace=tmp_path)
        rt.wait(other, timeout=30)
        [refused] = tool_results(rt, other, "write_file")
        rt.cancel(holder)
    assert not refused["ok"]
    assert refused["value"]["details"]["holder_session_id"] == holder
    assert "role holder" in refused["value"]["error"]
    assert (tmp_path / "shared.txt").read_text() == "holder"


HOST = textwrap.dedent("""
    import sys
    import sessiontree as st
    from sessiontree.testing import Commits

    def policy(turn):
        if turn.turn == 0:
            return st.reply("", st.call("write_file", path="shared.txt", content="holder"))
        return st.reply("done")

    def latency(request):
        return 600.0 if len(request.messages) > 2 else 0.0  # sleep-ok: parked until killed

    db, ws = sys.argv[1], sys.argv[2]
    rt = st.Runtime.open(db, providers=[st.ScriptedProvider(policy, latency=latency)])
    sid = rt.create_session("hold", role="holder", capabilities=["fs.write"], workspace=ws)
    Commits(rt).until(lambda: any(m.role == "tool" for m in rt.messages(sid)), timeout=60)
    print(sid, flush=True)
    sys.stdin.read()  # parked until the test kills this process
""")


@pytest.mark.timeout(120)
def test_a_killed_hosts_leases_are_freed_when_the_store_is_opened_again(tmp_path: Path) -> None:
    script = tmp_path / "host.py"
    script.write_text(HOST)
    db, ws = tmp_path / "t.db", tmp_path / "ws"
    ws.mkdir()
    host = subprocess.Popen([sys.executable, str(script), str(db), str(ws)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert host.stdout is not None
        holder = host.stdout.readline().strip()
        assert holder.startswith("ses_"), holder
    finally:
        host.send_signal(signal.SIGKILL)
        host.wait(timeout=30)
    assert (ws / "shared.txt").read_text() == "holder"

    with st.Runtime.open(db, providers=[writer_then(tmp_path, "done")]) as rt:
        other = rt.create_session("write", role="other", capabilities=["fs.write"], workspace=ws)
        rt.wait(other, timeout=30)
        [written] = tool_results(rt, other, "write_file")
        [freed] = rt.events(session_id=holder, type_prefix="FR-EVT-SESS-WORKSPACE-RELEASED")
        rt.wait(holder, timeout=30)  # recovered, and finished by this host
    assert written["ok"], written
    assert freed.payload == {"reason": "host_changed", "patterns": ["shared.txt"]}
    assert (ws / "shared.txt").read_text() == "other"
