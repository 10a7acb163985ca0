"""The session state machine: one table of legal transitions, checked in one function.

``waiting`` means waiting for children to announce back; ``awaiting_operator`` holds a
session whose tool call was cut off between intent and result (an operator resolves it);
``awaiting_consent`` and ``paused`` are operator holds too. Terminal states never move.
"""

from __future__ import annotations

from enum import StrEnum

from sessiontree.errors import IllegalTransition


class SessionState(StrEnum):
    CREATED = "created"
    QUEUED = "queued"
    RUNNING = "running"
    WAITING = "waiting"
    AWAITING_CONSENT = "awaiting_consent"
    AWAITING_OPERATOR = "awaiting_operator"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES


S = SessionState
TERMINAL_STATES: frozenset[SessionState] = frozenset({S.COMPLETED, S.FAILED, S.CANCELLED})
_ENDINGS = {S.FAILED, S.CANCELLED}

TRANSITIONS: dict[SessionState, frozenset[SessionState]] = {
    S.CREATED: frozenset({S.QUEUED, S.PAUSED} | _ENDINGS),
    S.QUEUED: frozenset({S.RUNNING, S.PAUSED} | _ENDINGS),
    # running -> queued: the turn asked for tools and its next model_run is queued, or
    # the job was restarted/recovered. running -> completed: the model gave its answer.
    S.RUNNING: frozenset(
        {S.QUEUED, S.WAITING, S.AWAITING_CONSENT, S.AWAITING_OPERATOR, S.PAUSED, S.COMPLETED}
        | _ENDINGS
    ),
    S.WAITING: frozenset({S.QUEUED, S.PAUSED} | _ENDINGS),
    S.AWAITING_CONSENT: frozenset({S.QUEUED} | _ENDINGS),
    S.AWAITING_OPERATOR: frozenset({S.QUEUED} | _ENDINGS),
    S.PAUSED: frozenset({S.QUEUED, S.WAITING} | _ENDINGS),
    S.COMPLETED: frozenset(),
    S.FAILED: frozenset(),
    S.CANCELLED: frozenset(),
}


def check_transition(session_id: str, from_state: str, to_state: str) -> SessionState:
    """Return ``to_state`` as a :class:`SessionState` if the move is legal.

    Raises :class:`IllegalTransition` otherwise (including any move out of a terminal
    state, and unknown state names). Never mutates anything.
    """
    try:
        src, dst = SessionState(from_state), SessionState(to_state)
    except ValueError:
        raise IllegalTransition(session_id, from_state, to_state) from None
    if dst not in TRANSITIONS[src]:
        raise IllegalTransition(session_id, from_state, to_state)
    return dst
