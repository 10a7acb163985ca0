"""The control channel (``persistence.commands``, ``_control``): commands written by the
command line in this process, applied by a host running in another process
(``tests/control_host.py``), or by the next host when none runs.

Every wait is on an answer from the host or on a store condition polled with a deadline.
"""

from __future__ import annotations

import contextlib
import io
import json
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import sessiontree as st
from sessiontree.console.cli import main
from sessiontree.persistence import commands, open_store
from sessiontree.persistence.store import Store

WAIT = 20.0
HOST = Path(__file__).resolve().parent / "control_host.py"


def cli(*argv: str | Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


class Host:
    """``tests/control_host.py`` in a child process, one JSON answer a command."""

    def __init__(self, db: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HOST), str(db)], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        assert self.answer() == {"ready": True}

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def answer(self) -> Any:
        try:
            return json.loads(self.lines.get(timeout=WAIT))
        except queue.Empty:
            pytest.fail("the host process did not answer")

    def ask(self, line: str) -> Any:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.answer()

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.ask("quit") == {"closed": True}
        self.proc.wait(WAIT)
        self.reader.join(WAIT)


@pytest.fixture
def host(db_path: Path) -> Iterator[Host]:
    h = Host(db_path)
    try:
        yield h
    finally:
        if h.proc.poll() is None:
            with contextlib.suppress(Exception):
                h.close()
            if h.proc.poll() is None:
                h.proc.kill()
                h.proc.wait(WAIT)


def state(store: Store, sid: str) -> str:
    return store.session(sid).state


def dispatches(store: Store, sid: str) -> int:
    return len(store.events(session_id=sid, type_prefix="FR-EVT-SESS-SCHED-DISPATCHED"))


def applied_in_ms(out: str) -> float:
    found = re.search(r"^applied: .* \((\d+) ms\)$", out.strip())
    assert found, out
    return float(found.group(1))


def test_pause_holds_dispatch_in_the_host_and_resume_restarts_it(db_path: Path, host: Host) -> None:
    tree = host.ask("tree p 2")
    root, (k0, k1) = tree["root"], tree["kids"]
    reader = open_store(db_path, create=False)
    try:
        code, out, _ = cli("pause", "--db", db_path, k1)
        assert code == 0 and f"paused 1 session: {k1}" in out
        applied_in_ms(out)
        code, out, _ = cli("pause", "--db", db_path, k1)  # twice: harmless
        assert code == 0 and "nothing to pause: already paused" in out
        assert state(reader, k1) == "running"  # in its first step, which goes on
        host.ask("release p 0")
        host.ask("release p 1")
        host.ask(f"await {k0} completed")
        host.ask(f"await {k1} paused")
        host.ask("idle")
        assert state(reader, k1) == "paused" and dispatches(reader, k1) == 1
        assert state(reader, root) == "waiting"
        code, out, _ = cli("resume", "--db", db_path, k1)
        assert code == 0 and f"resumed 1 session: {k1}" in out
        host.ask(f"await {root} completed")
        assert dispatches(reader, k1) == 2
        kinds = [(e.type, e.payload["kind"]) for e in reader.events(
            session_id=k1, type_prefix="FR-EVT-SESS-CONTROL-")]
        assert kinds == [("FR-EVT-SESS-CONTROL-APPLIED", k) for k in ("pause", "pause", "resume")]
    finally:
        reader.close()


def test_a_subtree_cancel_ends_every_descendant_and_a_second_is_refused(
    db_path: Path, host: Host,
) -> None:
    tree = host.ask("tree c 3")
    root, kids = tree["root"], tree["kids"]
    code, out, _ = cli("cancel", "--db", db_path, root, "--subtree", "--note", "enough")
    assert code == 0 and f"cancelled {root} and its subtree" in out
    with contextlib.closing(open_store(db_path, create=False)) as reader:
        assert state(reader, root) == "cancelled"
        assert reader.session(root).state_reason == "cancelled_by_operator"
        assert {state(reader, k) for k in kids} == {"cancelled"}
    code, _, err = cli("cancel", "--db", db_path, root)
    assert code == 2 and f"session {root} has ended (cancelled); nothing to cancel" in err


def test_a_command_for_an_unknown_session_is_refused(db_path: Path, host: Host) -> None:
    code, _, err = cli("pause", "--db", db_path, "ses_nope")
    assert code == 2 and "unknown session id: 'ses_nope'" in err
    # written anyway (by another client): the host refuses it and says why
    with contextlib.closing(open_store(db_path, create=False)) as store:
        cmd = commands.write(store, "resume", "ses_nope")
        host.ask(f"settled {cmd.id}")
        settled = commands.get(store, cmd.id)
        assert (settled.state, settled.outcome) == ("refused", "unknown session id: 'ses_nope'")
        refused = store.events(type_prefix="FR-EVT-SESS-CONTROL-REFUSED")
        assert [e.payload["command_id"] for e in refused] == [cmd.id]


def test_a_command_written_with_no_host_is_applied_by_the_next_open(db_path: Path) -> None:
    provider = st.ScriptedProvider(lambda t: "ok")
    with st.Runtime.open(db_path, providers=[provider]) as rt:
        sid = rt.create_session("x", start=False)
        other = rt.create_session("y", start=False)
    code, out, _ = cli("pause", "--db", db_path, sid)
    assert code == 0 and "no host holds" in out
    assert cli("cancel", "--db", db_path, other)[0] == 0
    with st.Runtime.open(db_path, providers=[provider]) as rt:
        assert rt.paused_sessions() == [sid]
        assert rt.session(other).state == "cancelled"
        outcomes = [e.payload["kind"] for e in rt.events(type_prefix="FR-EVT-SESS-CONTROL-APPLIED")]
        assert outcomes == ["pause", "cancel"]
        assert rt.apply_commands() == []  # each applied once


def test_retry_resolve_consent_and_revoke_go_through_a_live_host(db_path: Path) -> None:
    calls: list[str] = []

    def policy(turn: st.ScriptTurn) -> Any:
        calls.append(turn.task)
        if turn.task == "fail" and calls.count("fail") == 1:
            raise st.ProviderError("no", reason=st.Reason.PROVIDER_BAD_REQUEST, retryable=False)
        return "ok"

    with st.Runtime.open(db_path, providers=[st.ScriptedProvider(policy)]) as rt:
        sid = rt.create_session("fail")
        assert rt.wait(sid, timeout=WAIT).state == "failed"
        code, out, _ = cli("retry", "--db", db_path, sid)
        assert code == 0 and out.startswith("applied: retry") and "queued again as job" in out
        assert rt.wait(sid, timeout=WAIT).state == "completed"
        token = rt.create_session("t", capabilities=["fs.read"], start=False)
        tok = rt.capability_tokens(token)[0].id
        code, out, _ = cli("revoke", "--db", db_path, tok)
        assert code == 0 and "revoked 1 token" in out
        code, out, _ = cli("resolve", "--db", db_path, "--call", "tc_nope", "--done")
        assert code == 1 and "refused" in out and "tc_nope" in out
        code, out, _ = cli("consent", "grant", "--db", db_path, token)
        assert code == 0 and "consent grant for scripted" in out
