"""The payload schemas of the Flight Recorder's event types, one pydantic model each
(the registry that names them is ``persistence.events``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- FR-EVT-SESS-*: lifecycle --------------------------------------------------------------
class SessCreated(_Payload):
    """A session was created (by the host, or by a spawn), with its place in the tree."""

    role: str
    parent_id: str | None
    root_id: str
    depth: int
    provider: str
    model: str
    budget: dict[str, Any]


class SessState(_Payload):
    """A session moved from one state to another, with the reason code."""

    from_state: str
    to_state: str
    reason: str | None = None
    note: str | None = None  # an operator's or host's free text, beside the reason


class SessEnded(_Payload):
    """A session reached a terminal state (written beside its last STATE event): the
    reason, its own usage, its summary's artifact when it completed."""

    reason: str | None
    usage: dict[str, Any]
    summary_hash: str | None = None
    note: str | None = None


class SessPaused(_Payload):
    """An operator or the host paused a session (its queued run is held)."""

    from_state: str
    by: str
    note: str | None = None


class SessResumed(_Payload):
    """A paused session was resumed."""

    to_state: str
    by: str
    note: str | None = None


class SessMessage(_Payload):
    """A message was appended to the session's history: its place in the hash chain."""

    seq: int
    role: str
    artifact_hash: str
    chain_hash: str
    trust: str


class SessCheckpoint(_Payload):
    """The session's resumable state was committed (what a restart resumes from)."""

    checkpoint_seq: int
    message_seq: int
    message_head: str
    open_tool_calls: list[str]
    awaited_children: list[str]
    state: str


class SessUsage(_Payload):
    """A model_run's usage was charged to the session (``run``), and its total since."""

    run: dict[str, Any]
    total: dict[str, Any]


class SessBudgetExceeded(_Payload):
    """The session's budget cannot admit its next run (the dimension that ran out)."""

    dimension: str
    budget: dict[str, Any]
    spent: dict[str, Any]


class SessToolIntent(_Payload):
    """A tool is called: the journal's intent, committed before the tool runs, naming
    the capability the gate required and the tokens that allowed it (or, for a built-in
    that needs no token, the condition that did)."""

    call_id: str
    tool: str
    effect: str
    idempotency_key: str
    attempt: int
    capability: str | None = None  # what the gate required (None: a built-in's condition)
    token_ids: list[str] = []  # the tokens that allowed the call
    condition: str | None = None  # or the condition that did ("has_children")


class SessToolDenied(_Payload):
    """The Tool Gate refused a call the model asked for (the model gets an error
    result): unknown tool, capability not held, or arguments that fail the schema."""

    call_id: str
    tool: str
    reason: str
    detail: str
    capability: str | None = None
    token_id: str | None = None  # an expired or revoked token that would have covered it


class SessToolResult(_Payload):
    """A tool call's result was stored as the session's next message."""

    call_id: str
    tool: str
    ok: bool
    result_hash: str
    reason: str | None = None


class SessToolResolved(_Payload):
    """An operator said what happened to a side-effecting call cut off mid-way."""

    call_id: str
    outcome: str
    by: str


class SessCrashed(_Payload):
    """The session's actor died of an unhandled exception during a run."""

    error_type: str
    error: str
    attempt: int


class SessRestarted(_Payload):
    """Supervision restarted the session's run from its checkpoint, after ``delay``."""

    attempt: int
    delay: float
    restarts_in_period: int
    strategy: str
    cause_session_id: str


class SessRecovered(_Payload):
    """Opening the store resumed a session that a dead process had left mid-run."""

    from_state: str
    attempt: int
    open_tool_calls: list[str]


class SessStoreLost(_Payload):
    """The store file was deleted or replaced under the live host (lease heartbeat)."""

    path: str
    problem: str  # "gone" or "replaced"
    expected: str  # the file identity opened, "st_dev:st_ino"
    found: str | None = None  # the identity now at the path, if any


# -- FR-EVT-SESS-TOOL-*: the tool-call journal ----------------------------------------------
class SessUnknownSideEffect(_Payload):
    """A side-effecting call has an intent and no result: held for an operator."""

    call_id: str
    tool: str


# -- host and retention ---------------------------------------------------------------------
class SessHost(_Payload):
    """An event the host recorded itself (``Runtime.record_event``): a name of its own
    and JSON data, validated here like every other payload."""

    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:-]+$")
    data: dict[str, Any] = {}


class SessCompacted(_Payload):
    """Retention removed some of this session's events (what, how many, under which
    policy); its messages, artifacts and checkpoints are never removed."""

    policy: str
    removed: int
    oldest_ts: float
    newest_ts: float
    types: dict[str, int]


# -- FR-EVT-SESS-SCHED-*: model_run jobs ----------------------------------------------------
class SessStopped(_Payload):
    """An attempt a stop cancelled has ended (the shutdown protocol): ``stopped`` (it
    saw its cancel), ``crashed`` (it died on the way), ``abandoned`` (still running
    after ``shutdown`` seconds: fenced, no longer waited for), ``killed`` (a
    ``brutal_kill`` child: fenced, never waited for), ``not_running`` (a group member
    with no attempt in flight)."""

    attempt: int | None
    outcome: str
    shutdown: float
    reason: str
    group_parent_id: str | None = None


class SessGroupRestart(_Payload):
    """A parent's children are restarted as a group: stopped in ``stop_order``, then
    started again in ``members`` (spawn) order once all stopped and ``delay`` passed."""

    strategy: str
    cause_session_id: str
    members: list[str]
    stop_order: list[str]
    delay: float
    restarts_in_period: int
    again: bool = False  # a member crashed while the group was being restarted
    counted: bool = True  # False: a crash while stopping, folded into the restart under way


class SessGroupStarted(_Payload):
    """A group restart started its members again, in spawn order."""

    members: list[str]


class SessSupervisorGaveUp(_Payload):
    """A parent passed its supervisor intensity: it fails and its children are torn down."""

    restarts_in_period: int
    max_restarts: int
    period: float
    cause_session_id: str


class SessAutoShutdown(_Payload):
    """A parent ended because a significant child ended (OTP's auto_shutdown)."""

    auto_shutdown: str
    child_id: str
    child_state: str


class SessRetried(_Payload):
    """An operator retried a failed session from its latest checkpoint, as a new attempt."""

    job_id: str
    attempt: int
    failed_reason: str | None
    checkpoint_seq: int
    parent_told_again: bool | None
    note: str | None = None


# -- FR-EVT-SESS-SPAWN-*: children ----------------------------------------------------------
