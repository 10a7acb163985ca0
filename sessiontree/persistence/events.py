"""Flight Recorder event types and their payload schemas.

Every event type is registered here with a pydantic model; :func:`validate_payload` and
:func:`payload_json` (what the store writes) reject an unregistered type or a payload
that does not fit its schema. Families:
``FR-EVT-SESS-*`` (session lifecycle), ``FR-EVT-SESS-SCHED-*`` (jobs),
``FR-EVT-SESS-SPAWN-*`` (spawn steps), ``FR-EVT-SESS-CAPABILITY-*`` and
``FR-EVT-SESS-CONSENT-*`` (tokens and consent) and ``FR-EVT-SESS-WORKSPACE-*`` (bindings, path
leases, conflicts, worktrees, merges).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import PydanticSerializationError

from sessiontree._errors import InvalidInput


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SessCreated(_Payload):
    role: str
    parent_id: str | None
    root_id: str
    depth: int
    provider: str
    model: str
    budget: dict[str, Any]


class SessState(_Payload):
    from_state: str
    to_state: str
    reason: str | None = None
    note: str | None = None  # an operator's or host's free text, beside the reason


class SessMessage(_Payload):
    seq: int
    role: str
    artifact_hash: str
    chain_hash: str
    trust: str


class SessCheckpoint(_Payload):
    checkpoint_seq: int
    message_seq: int
    message_head: str
    open_tool_calls: list[str]
    awaited_children: list[str]
    state: str


class SessUsage(_Payload):
    run: dict[str, Any]
    total: dict[str, Any]


class SessBudgetExceeded(_Payload):
    dimension: str
    budget: dict[str, Any]
    spent: dict[str, Any]


class SessToolIntent(_Payload):
    call_id: str
    tool: str
    effect: str
    idempotency_key: str
    attempt: int
    capability: str | None = None  # what the gate required (None: a built-in's condition)
    token_ids: list[str] = []  # the tokens that allowed the call


class SessToolDenied(_Payload):
    call_id: str
    tool: str
    reason: str
    detail: str
    capability: str | None = None
    token_id: str | None = None  # an expired or revoked token that would have covered it


class CapabilityIssued(_Payload):
    tokens: list[dict[str, Any]]


class CapabilityRevoked(_Payload):
    token_id: str
    capability: str
    reason: str
    cascade_from: str | None = None


class CapabilityExpired(_Payload):
    token_id: str
    capability: str
    expires_at: float
    call_id: str  # the call the gate denied because of it


class ConsentRequested(_Payload):
    provider: str
    root_id: str


class ConsentDecided(_Payload):
    provider: str
    root_id: str
    by: str


class SessToolResult(_Payload):
    call_id: str
    tool: str
    ok: bool
    result_hash: str
    reason: str | None = None


class SessToolResolved(_Payload):
    call_id: str
    outcome: str
    by: str


class SessCrashed(_Payload):
    error_type: str
    error: str
    attempt: int


class SessRestarted(_Payload):
    attempt: int
    delay: float
    restarts_in_period: int
    strategy: str
    cause_session_id: str


class SessRecovered(_Payload):
    from_state: str
    attempt: int
    open_tool_calls: list[str]


class SessStoreLost(_Payload):
    path: str
    problem: str  # "gone" or "replaced"
    expected: str  # the file identity opened, "st_dev:st_ino"
    found: str | None = None  # the identity now at the path, if any


class SessUnknownSideEffect(_Payload):
    call_id: str
    tool: str


class SchedEnqueued(_Payload):
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
    members: list[str]


class SessSupervisorGaveUp(_Payload):
    restarts_in_period: int
    max_restarts: int
    period: float
    cause_session_id: str


class SessAutoShutdown(_Payload):
    auto_shutdown: str
    child_id: str
    child_state: str


class SessRetried(_Payload):
    job_id: str
    attempt: int
    failed_reason: str | None
    checkpoint_seq: int
    parent_told_again: bool | None
    note: str | None = None


class SchedDispatched(_Payload):
    attempt: int
    provider: str
    reservation: dict[str, Any]


class SchedCompleted(_Payload):
    attempt: int
    outcome: str


class SchedFailed(_Payload):
    attempt: int
    reason: str
    error: str | None = None


class SchedCancelled(_Payload):
    attempt: int
    reason: str
    was_running: bool
    note: str | None = None  # the host's free text beside the reason (cancel_job)


class SchedRetried(_Payload):
    attempt: int
    delay: float
    reason: str


class SchedThrottled(_Payload):
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


class SpawnRequested(_Payload):
    parent_id: str
    role: str
    depth: int
    budget: dict[str, Any] | None
    call_id: str | None = None


class SpawnAccepted(_Payload):
    parent_id: str
    child_id: str
    depth: int
    budget: dict[str, Any]
    granted: list[str] = []
    dropped: list[str] = []  # asked for, not held by the parent: refused


class SpawnRejected(_Payload):
    parent_id: str
    reason: str
    detail: str


class SpawnAnnounced(_Payload):
    parent_id: str
    child_id: str
    status: str
    reason: str | None
    summary_hash: str | None
    usage: dict[str, Any]


class WorkspaceBound(_Payload):
    mode: str
    path: str
    owner_id: str
    branch: str | None = None
    repo: str | None = None


class WorkspaceLeased(_Payload):
    workspace: str
    patterns: list[str]
    mode: str
    expires_at: float | None = None


class WorkspaceReleased(_Payload):
    reason: str
    patterns: list[str]


class WorkspaceConflict(_Payload):
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
    action: str  # created | removed
    path: str
    branch: str
    commit: str | None = None


class WorkspaceMerged(_Payload):
    child_id: str
    branch: str
    commit: str
    paths: list[str]
    resolved: list[str] = []


EVENT_SCHEMAS: dict[str, type[_Payload]] = {
    "FR-EVT-SESS-CREATED": SessCreated,
    "FR-EVT-SESS-STATE": SessState,
    "FR-EVT-SESS-MESSAGE": SessMessage,
    "FR-EVT-SESS-CHECKPOINT": SessCheckpoint,
    "FR-EVT-SESS-USAGE": SessUsage,
    "FR-EVT-SESS-BUDGET-EXCEEDED": SessBudgetExceeded,
    "FR-EVT-SESS-TOOL-INTENT": SessToolIntent,
    "FR-EVT-SESS-TOOL-RESULT": SessToolResult,
    "FR-EVT-SESS-TOOL-RESOLVED": SessToolResolved,
    "FR-EVT-SESS-TOOL-DENIED": SessToolDenied,
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
