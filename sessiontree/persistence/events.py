"""The Flight Recorder's catalogue: every event type, with its payload schema.

One registry (:data:`EVENT_SCHEMAS`): an event type name maps to the pydantic model its
payload must fit; the model's docstring says what the event records and who writes it.
:func:`payload_json` (what a transaction writes) and :func:`validate_payload` reject an
unregistered type or a payload that does not fit, with :class:`InvalidInput`.

Families: ``FR-EVT-SESS-*`` (a session's lifecycle, messages, checkpoints, crashes,
restarts, budget, tools, capabilities, consent, workspace, the host's own notes),
``FR-EVT-SESS-SCHED-*`` (its model_run jobs in the scheduler) and
``FR-EVT-SESS-SPAWN-*`` (spawning children and their announce-back).

Every event row also carries ``model_session_id`` (the session it concerns), ``job_id``
(the model_run whose commit wrote it, when one did), ``trace_id`` (one per session
tree) and ``span_id`` (the span it belongs to: a tool call's, a model_run's or the
session's; see ``persistence.spans``).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import PydanticSerializationError

from sessiontree._errors import InvalidInput


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
    the capability the gate required and the tokens that allowed it."""

    call_id: str
    tool: str
    effect: str
    idempotency_key: str
    attempt: int
    capability: str | None = None  # what the gate required (None: a built-in's condition)
    token_ids: list[str] = []  # the tokens that allowed the call


class SessToolDenied(_Payload):
    """The Tool Gate refused a call the model asked for (the model gets an error
    result): unknown tool, capability not held, or arguments that fail the schema."""

    call_id: str
    tool: str
    reason: str
    detail: str
    capability: str | None = None
    token_id: str | None = None  # an expired or revoked token that would have covered it


class CapabilityIssued(_Payload):
    """Capability tokens were issued to a session (a root's by the host, a child's
    derived from its parent's)."""

    tokens: list[dict[str, Any]]


class CapabilityRevoked(_Payload):
    """A capability token was revoked (and, by cascade, every token derived from it)."""

    token_id: str
    capability: str
    reason: str
    cascade_from: str | None = None


class CapabilityExpired(_Payload):
    """A capability token expired; the gate denied the call that needed it."""

    token_id: str
    capability: str
    expires_at: float
    call_id: str  # the call the gate denied because of it


class ConsentRequested(_Payload):
    """The session waits for consent to send its data to a cloud provider."""

    provider: str
    root_id: str


class ConsentDecided(_Payload):
    """Consent for a cloud provider in this session tree was granted, denied or revoked."""

    provider: str
    root_id: str
    by: str


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
class SchedEnqueued(_Payload):
    """A model_run job was queued for the session (not before ``not_before``)."""

    attempt: int
    provider: str
    not_before: float | None = None
    pending: bool = False  # a message for a busy session: it waits its turn


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


class SchedDispatched(_Payload):
    """The scheduler started the job, with the budget it reserved for it."""

    attempt: int
    provider: str
    reservation: dict[str, Any]


class SchedCompleted(_Payload):
    """The job ended: the model answered, or its tool calls are done (``outcome``)."""

    attempt: int
    outcome: str


class SchedFailed(_Payload):
    """The job failed (budget, restart intensity, an unknown side effect, ...)."""

    attempt: int
    reason: str
    error: str | None = None


class SchedCancelled(_Payload):
    """The job was cancelled because its session ended; ``was_running`` if it ran."""

    attempt: int
    reason: str
    was_running: bool
    note: str | None = None  # the host's free text beside the reason (cancel_job)


class SchedRetried(_Payload):
    """The job was queued again with ``attempt`` (a restart or a recovery)."""

    attempt: int
    delay: float
    reason: str


class SchedThrottled(_Payload):
    """A queued job could not be dispatched yet: ``limit`` says which limit held it."""

    limit: str


class SchedCooldown(_Payload):
    """A retryable provider failure: the provider cools down, its concurrency shrinks."""

    provider: str
    reason: str
    status: int | None
    retry_after: float | None
    delay: float
    until: float
    concurrency: int
    run_failures: int


# -- FR-EVT-SESS-SPAWN-*: children ----------------------------------------------------------
class SpawnRequested(_Payload):
    """A session asked for a child (through ``spawn_session``)."""

    parent_id: str
    role: str
    depth: int
    budget: dict[str, Any] | None
    call_id: str | None = None


class SpawnAccepted(_Payload):
    """The scheduler accepted a spawn: the child, its depth, its carved budget."""

    parent_id: str
    child_id: str
    depth: int
    budget: dict[str, Any]
    granted: list[str] = []
    dropped: list[str] = []  # asked for, not held by the parent: refused


class SpawnRejected(_Payload):
    """The scheduler rejected a spawn, with its reason code."""

    parent_id: str
    reason: str
    detail: str


class SpawnAnnounced(_Payload):
    """A child that ended announced back to its parent's mailbox."""

    parent_id: str
    child_id: str
    status: str
    reason: str | None
    summary_hash: str | None
    usage: dict[str, Any]


class WorkspaceBound(_Payload):
    """A workspace directory was bound to the session, in its mode."""

    mode: str
    path: str
    owner_id: str
    branch: str | None = None
    repo: str | None = None


class WorkspaceLeased(_Payload):
    """The session took path leases (read or write) in its workspace."""

    workspace: str
    patterns: list[str]
    mode: str
    expires_at: float | None = None


class WorkspaceReleased(_Payload):
    """The session's path leases were freed (it ended, or its host changed)."""

    reason: str
    patterns: list[str]


class WorkspaceConflict(_Payload):
    """A write to a workspace path leased by another session was refused."""

    kind: str  # lease | merge
    paths: list[str]
    requested_mode: str | None = None
    holder_session_id: str | None = None
    holder_role: str | None = None
    lease_mode: str | None = None
    lease_pattern: str | None = None
    child_id: str | None = None
    branch: str | None = None


class WorkspaceWorktree(_Payload):
    """A session's git worktree was created or removed."""

    action: str  # created | removed
    path: str
    branch: str
    commit: str | None = None


class WorkspaceMerged(_Payload):
    """A child's worktree branch was merged into its parent's."""

    child_id: str
    branch: str
    commit: str
    paths: list[str]
    resolved: list[str] = []


EVENT_SCHEMAS: dict[str, type[_Payload]] = {
    "FR-EVT-SESS-CREATED": SessCreated,
    "FR-EVT-SESS-STATE": SessState,
    "FR-EVT-SESS-COMPLETED": SessEnded,
    "FR-EVT-SESS-FAILED": SessEnded,
    "FR-EVT-SESS-CANCELLED": SessEnded,
    "FR-EVT-SESS-PAUSED": SessPaused,
    "FR-EVT-SESS-RESUMED": SessResumed,
    "FR-EVT-SESS-MESSAGE": SessMessage,
    "FR-EVT-SESS-CHECKPOINT": SessCheckpoint,
    "FR-EVT-SESS-USAGE": SessUsage,
    "FR-EVT-SESS-BUDGET-EXCEEDED": SessBudgetExceeded,
    "FR-EVT-SESS-TOOL-INTENT": SessToolIntent,
    "FR-EVT-SESS-TOOL-RESULT": SessToolResult,
    "FR-EVT-SESS-TOOL-DENIED": SessToolDenied,
    "FR-EVT-SESS-TOOL-RESOLVED": SessToolResolved,
    "FR-EVT-SESS-CAPABILITY-ISSUED": CapabilityIssued,
    "FR-EVT-SESS-CAPABILITY-REVOKED": CapabilityRevoked,
    "FR-EVT-SESS-CAPABILITY-EXPIRED": CapabilityExpired,
    "FR-EVT-SESS-CONSENT-REQUESTED": ConsentRequested,
    "FR-EVT-SESS-CONSENT-GRANTED": ConsentDecided,
    "FR-EVT-SESS-CONSENT-DENIED": ConsentDecided,
    "FR-EVT-SESS-CONSENT-REVOKED": ConsentDecided,
    "FR-EVT-SESS-TOOL-UNKNOWN-SIDE-EFFECT": SessUnknownSideEffect,
    "FR-EVT-SESS-CRASHED": SessCrashed,
    "FR-EVT-SESS-RESTARTED": SessRestarted,
    "FR-EVT-SESS-RECOVERED": SessRecovered,
    "FR-EVT-SESS-STORE-LOST": SessStoreLost,
    "FR-EVT-SESS-STOPPED": SessStopped,
    "FR-EVT-SESS-GROUP-RESTART": SessGroupRestart,
    "FR-EVT-SESS-GROUP-STARTED": SessGroupStarted,
    "FR-EVT-SESS-SUPERVISOR-GAVE-UP": SessSupervisorGaveUp,
    "FR-EVT-SESS-AUTO-SHUTDOWN": SessAutoShutdown,
    "FR-EVT-SESS-RETRIED": SessRetried,
    "FR-EVT-SESS-HOST": SessHost,
    "FR-EVT-SESS-COMPACTED": SessCompacted,
    "FR-EVT-SESS-SCHED-ENQUEUED": SchedEnqueued,
    "FR-EVT-SESS-SCHED-DISPATCHED": SchedDispatched,
    "FR-EVT-SESS-SCHED-COMPLETED": SchedCompleted,
    "FR-EVT-SESS-SCHED-FAILED": SchedFailed,
    "FR-EVT-SESS-SCHED-CANCELLED": SchedCancelled,
    "FR-EVT-SESS-SCHED-RETRIED": SchedRetried,
    "FR-EVT-SESS-SCHED-THROTTLED": SchedThrottled,
    "FR-EVT-SESS-SCHED-COOLDOWN": SchedCooldown,
    "FR-EVT-SESS-SPAWN-REQUESTED": SpawnRequested,
    "FR-EVT-SESS-SPAWN-ACCEPTED": SpawnAccepted,
    "FR-EVT-SESS-SPAWN-REJECTED": SpawnRejected,
    "FR-EVT-SESS-SPAWN-ANNOUNCED": SpawnAnnounced,
    "FR-EVT-SESS-WORKSPACE-BOUND": WorkspaceBound,
    "FR-EVT-SESS-WORKSPACE-LEASED": WorkspaceLeased,
    "FR-EVT-SESS-WORKSPACE-RELEASED": WorkspaceReleased,
    "FR-EVT-SESS-WORKSPACE-CONFLICT": WorkspaceConflict,
    "FR-EVT-SESS-WORKSPACE-WORKTREE": WorkspaceWorktree,
    "FR-EVT-SESS-WORKSPACE-MERGED": WorkspaceMerged,
}

NOT_YET_EMITTED: dict[str, str] = {
    "FR-EVT-SESS-PAUSED": "pause and resume controls (issue 21)",
    "FR-EVT-SESS-RESUMED": "pause and resume controls (issue 21)",
}
"""Registered types whose producing feature is not built yet, with what will write
them: the catalogue lists them, and nothing in this code base writes them today."""

FAMILIES = ("FR-EVT-SESS-SCHED-", "FR-EVT-SESS-SPAWN-", "FR-EVT-SESS-")


def family(event_type: str) -> str:
    """The family of a registered type name (the longest matching prefix)."""
    for prefix in FAMILIES:
        if event_type.startswith(prefix):
            return prefix + "*"
    raise InvalidInput(f"{event_type!r} is in no Flight Recorder family", event_type=event_type)


def _validated(event_type: str, payload: dict[str, Any]) -> BaseModel:
    schema = EVENT_SCHEMAS.get(event_type)
    if schema is None:
        raise InvalidInput(f"unregistered event type {event_type!r}", event_type=event_type)
    try:
        return schema.model_validate(payload)
    except ValidationError as exc:
        raise InvalidInput(
            f"bad payload for {event_type}: {exc}", event_type=event_type
        ) from exc


def validate_payload(event_type: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Return the payload as validated JSON-able data; raise :class:`InvalidInput` if not."""
    return _validated(event_type, payload).model_dump(mode="json")


def payload_json(event_type: str, payload: dict[str, Any]) -> str:
    """The payload validated and serialized as JSON (what the event row stores).

    A payload string holding a lone surrogate (text a model chose, which UTF-8 cannot
    hold) is written with ASCII ``\\uXXXX`` escapes instead: lossless, and the event is
    still recorded."""
    model = _validated(event_type, payload)
    try:
        return model.model_dump_json()
    except PydanticSerializationError:
        return json.dumps(model.model_dump(mode="json"), separators=(",", ":"))
    except ValueError as exc:  # pydantic's serialization error: a value JSON cannot hold
        if isinstance(exc, InvalidInput):
            raise
        raise InvalidInput(f"bad payload for {event_type}: {exc}", event_type=event_type) from exc
