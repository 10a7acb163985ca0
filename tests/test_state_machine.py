"""The session state machine: one table, checked in one function."""

from __future__ import annotations

from pathlib import Path

import pytest

import sessiontree as st
from sessiontree._states import TERMINAL_STATES, TRANSITIONS, SessionState, check_transition

LEGAL = [(src, dst) for src, dsts in TRANSITIONS.items() for dst in sorted(dsts)]
ILLEGAL_SAMPLE = [
    ("created", "running"), ("created", "completed"), ("paused", "completed"),
    ("queued", "waiting"), ("waiting", "running"), ("awaiting_operator", "completed"),
    ("idle", "running"), ("idle", "waiting"), ("created", "idle"),
    ("paused", "running"), ("awaiting_operator", "running"), ("running", "created"),
    ("running", "nonsense"), ("nonsense", "queued"),
]


@pytest.mark.parametrize(("src", "dst"), LEGAL)
def test_every_legal_transition_is_accepted(src: SessionState, dst: SessionState) -> None:
    assert check_transition("s", src.value, dst.value) is dst


@pytest.mark.parametrize(("src", "dst"), ILLEGAL_SAMPLE)
def test_illegal_transitions_raise(src: str, dst: str) -> None:
    with pytest.raises(st.IllegalTransition) as info:
        check_transition("s", src, dst)
    assert (info.value.from_state, info.value.to_state) == (src, dst)


RETRY = (SessionState.FAILED, SessionState.QUEUED)  # an operator's retry (Tx.reopen) only


@pytest.mark.parametrize("terminal", sorted(TERMINAL_STATES))
@pytest.mark.parametrize("dst", list(SessionState))
def test_nothing_moves_a_terminal_session_but_a_retry(
    terminal: SessionState, dst: SessionState
) -> None:
    if (terminal, dst) == RETRY:
        assert check_transition("s", terminal.value, dst.value) is dst
        return
    with pytest.raises(st.IllegalTransition):
        check_transition("s", terminal.value, dst.value)


def test_set_state_refuses_to_move_a_failed_session_only_reopen_does(db_path: Path) -> None:
    with st.Runtime.open(db_path, providers=[st.ScriptedProvider(lambda t: "x")]) as rt:
        sid = rt.create_session("q", start=False)
        rt.cancel(sid)
        with rt._store.transaction() as tx, pytest.raises(st.IllegalTransition):
            tx.set_state(sid, SessionState.QUEUED, st.Reason.RETRIED)
        with rt._store.transaction() as tx, pytest.raises(st.IllegalTransition):
            tx.reopen(sid)  # cancelled, not failed
        assert rt.session(sid).state == "cancelled"


def test_a_completed_session_cannot_be_queued_again(db_path: Path) -> None:
    with st.Runtime.open(db_path, providers=[st.ScriptedProvider(lambda t: "answer")]) as rt:
        sid = rt.create_session("q")
        assert rt.wait(sid, timeout=10).state == "completed"
        with pytest.raises(st.IllegalTransition):
            rt.enqueue(sid)
        assert rt.session(sid).state == "completed"


def test_every_state_change_is_an_event_in_order(db_path: Path) -> None:
    def policy(turn: st.ScriptTurn) -> st.ModelReply:
        return st.reply("", st.call("wait_for_children")) if turn.turn == 0 else st.reply("ok")

    with st.Runtime.open(db_path, providers=[st.ScriptedProvider(policy)]) as rt:
        sid = rt.create_session("q")
        rt.wait(sid, timeout=10)
        moves = [(e.payload["from_state"], e.payload["to_state"])
                 for e in rt.events(session_id=sid, type_prefix="FR-EVT-SESS-STATE")]
    assert moves == [("created", "queued"), ("queued", "running"), ("running", "queued"),
                     ("queued", "running"), ("running", "completed")]
