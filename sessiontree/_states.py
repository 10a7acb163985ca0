"""The state machines: sessions, model_run jobs and tool calls, each one table of legal
transitions checked in one function. Nothing else decides whether a state may move.

Sessions: ``waiting`` means waiting for children to announce back; ``idle`` means a
conversational session (``keep_open``) answered and waits for the host's next message;
``awaiting_operator`` holds a session whose tool call was cut off between intent and
result (an operator resolves it); ``awaiting_consent`` and ``paused`` are operator holds
too. Terminal states never move, with one exception an operator asks for by name:
``failed -> queued`` is :meth:`Runtime.retry` (``Tx.reopen``), a new attempt from the
latest checkpoint; ``Tx.set_state`` refuses every move out of a terminal state.

Jobs (one model_run each): ``queued -> running -> completed | failed | cancelled``;
``running -> queued`` is a restart or a recovery (a new attempt); a queued job can be
cancelled, or failed before dispatch (its session's budget cannot admit it). A job is
``pending`` when the host sent a message to a session busy with another turn: it waits
its turn (``pending -> queued``, one at a time, in the order sent) or is cancelled.

Tool calls (the journal): ``pending`` (asked for by the model) ``-> intent`` (journaled,
about to run) ``-> done | failed``; ``waiting`` is ``wait_for_children`` parked until the
children announce. A call denied by the gate goes from ``pending`` straight to
``failed``. Writing the same ending again is allowed (a result rewritten after a fenced
run); an ended call never moves to another state.
"""

from __future__ import annotations

from enum import Enum, StrEnum
from typing import Any, TypeVar

from sessiontree._errors import IllegalTransition


class SessionState(StrEnum):
    """The state of a session (see the module docstring for what each one means)."""

    CREATED = "created"
    QUEUED = "queued"
    RUNNING = "running"
    WAITING = "waiting"
    IDLE = "idle"
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
TERMINAL_VALUES: tuple[str, ...] = tuple(sorted(s.value for s in TERMINAL_STATES))
"""The same, as the strings stored in rows and carried by commit summaries (a tuple:
also the parameters of an SQL ``IN`` list)."""
_ENDINGS = {S.FAILED, S.CANCELLED}

TRANSITIONS: dict[SessionState, frozenset[SessionState]] = {
    S.CREATED: frozenset({S.QUEUED, S.PAUSED} | _ENDINGS),
    # queued -> awaiting_consent: a cloud provider's run met no consent at dispatch
    # queued/waiting -> completed: auto_shutdown, a significant child completed while
    # its parent waited for it (or for its own next turn)
    # queued -> idle: the host cancelled a conversational session's queued turn
    S.QUEUED: frozenset({S.RUNNING, S.PAUSED, S.AWAITING_CONSENT, S.IDLE, S.COMPLETED} | _ENDINGS),
    # running -> queued: the turn asked for tools and its next model_run is queued, or
    # the job was restarted/recovered. running -> completed: the model gave its answer.
    # running -> idle: a conversational session answered and waits for the host.
    S.RUNNING: frozenset(
        {S.QUEUED, S.WAITING, S.IDLE, S.AWAITING_CONSENT, S.AWAITING_OPERATOR, S.PAUSED,
         S.COMPLETED}
        | _ENDINGS
    ),
    S.WAITING: frozenset({S.QUEUED, S.PAUSED, S.COMPLETED} | _ENDINGS),
    # idle -> queued: the host sent a message; idle -> completed: the host closed it.
    S.IDLE: frozenset({S.QUEUED, S.PAUSED, S.COMPLETED} | _ENDINGS),
    S.AWAITING_CONSENT: frozenset({S.QUEUED} | _ENDINGS),
    S.AWAITING_OPERATOR: frozenset({S.QUEUED} | _ENDINGS),
    S.PAUSED: frozenset({S.QUEUED, S.WAITING, S.IDLE} | _ENDINGS),
    S.COMPLETED: frozenset(),
    S.FAILED: frozenset({S.QUEUED}),  # an operator's retry only (Tx.reopen)
    S.CANCELLED: frozenset(),
}


def check_transition(session_id: str, from_state: str, to_state: str) -> SessionState:
    """Return ``to_state`` as a :class:`SessionState` if the move is legal.

    Raises :class:`IllegalTransition` otherwise (including any move out of a terminal
    state, and unknown state names). Never mutates anything.
    """
    dst = _lookup(_LEGAL_SESSION, from_state, to_state)
    if dst is None:
        raise IllegalTransition(session_id, from_state, to_state)
    return dst


class JobState(StrEnum):
    """The state of one model_run job."""

    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in JOB_TERMINAL


J = JobState
JOB_TERMINAL: frozenset[JobState] = frozenset({J.COMPLETED, J.FAILED, J.CANCELLED})
LIVE_JOB_STATES: tuple[str, ...] = (J.PENDING.value, J.QUEUED.value, J.RUNNING.value)
JOB_TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    J.PENDING: frozenset({J.QUEUED, J.CANCELLED}),
    J.QUEUED: frozenset({J.RUNNING, J.FAILED, J.CANCELLED}),
    J.RUNNING: frozenset({J.QUEUED, J.COMPLETED, J.FAILED, J.CANCELLED}),
    J.COMPLETED: frozenset(),
    J.FAILED: frozenset(),
    J.CANCELLED: frozenset(),
}


class ToolCallState(StrEnum):
    """The journal state of one tool call."""

    PENDING = "pending"
    INTENT = "intent"
    WAITING = "waiting"
    DONE = "done"
    FAILED = "failed"

    @property
    def ended(self) -> bool:
        return self in CALL_ENDED


T = ToolCallState
CALL_ENDED: frozenset[ToolCallState] = frozenset({T.DONE, T.FAILED})
CALL_TRANSITIONS: dict[ToolCallState, frozenset[ToolCallState]] = {
    T.PENDING: frozenset({T.INTENT, T.WAITING, T.DONE, T.FAILED}),
    T.INTENT: frozenset({T.INTENT, T.WAITING, T.DONE, T.FAILED}),
    T.WAITING: frozenset({T.WAITING, T.DONE, T.FAILED}),
    T.DONE: frozenset({T.DONE}),
    T.FAILED: frozenset({T.FAILED}),
}


def check_job_transition(job_id: str, from_state: str, to_state: str) -> JobState:
    """Return ``to_state`` as a :class:`JobState` if a job may move so; raise
    :class:`IllegalTransition` (``kind="job"``) otherwise."""
    dst = _lookup(_LEGAL_JOB, from_state, to_state)
    if dst is None:
        raise IllegalTransition(job_id, from_state, to_state, kind="job")
    return dst


def check_call_transition(call_id: str, from_state: str, to_state: str) -> ToolCallState:
    """Return ``to_state`` as a :class:`ToolCallState` if a tool call may move so; raise
    :class:`IllegalTransition` (``kind="tool_call"``) otherwise."""
    dst = _lookup(_LEGAL_CALL, from_state, to_state)
    if dst is None:
        raise IllegalTransition(call_id, from_state, to_state, kind="tool_call")
    return dst


E = TypeVar("E", bound=Enum)


def _legal(table: dict[E, frozenset[E]]) -> dict[tuple[Any, Any], E]:
    """Every legal (from, to) pair -- as names or as members -- to its target member:
    one dict lookup a check (these checks run several times a model_run)."""
    return {(a, b): dst for src, dsts in table.items() for dst in dsts
            for a in (src, src.value) for b in (dst, dst.value)}


def _lookup(table: dict[tuple[Any, Any], E], from_state: Any, to_state: Any) -> E | None:
    try:
        return table.get((from_state, to_state))
    except TypeError:  # not even a name (unhashable): no legal move
        return None


_LEGAL_SESSION = _legal(TRANSITIONS)
_LEGAL_JOB = _legal(JOB_TRANSITIONS)
_LEGAL_CALL = _legal(CALL_TRANSITIONS)
