"""The Flight Recorder's catalogue: every event type, with its payload schema.

One registry (:data:`EVENT_SCHEMAS`): an event type name maps to the pydantic model its
payload must fit; the model's docstring says what the event records and who writes it.
:func:`payload_json` (what a transaction writes) and :func:`validate_payload` reject an
unregistered type or a payload that does not fit, with :class:`InvalidInput`.

Families: ``FR-EVT-SESS-*`` (a session's lifecycle, messages, checkpoints, crashes,
restarts, budget, tools, consent, workspace, the host's own notes),
``FR-EVT-SESS-SCHED-*`` (its model_run jobs in the scheduler) and
``FR-EVT-SESS-SPAWN-*`` (spawning children and their announce-back).

Every event row also carries ``model_session_id`` (the session it concerns), ``job_id``
(the model_run whose commit wrote it, when one did), ``trace_id`` (one per session
tree) and ``span_id`` (the span it belongs to: a tool call's, a model_run's or the
session's; see ``persistence.spans``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

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


# -- FR-EVT-SESS-TOOL-*: the tool-call journal ----------------------------------------------
class SessToolIntent(_Payload):
    """A tool is called: the journal's intent, committed before the tool runs."""

    call_id: str
    tool: str
    effect: str
    idempotency_key: str
    attempt: int


class SessToolResult(_Payload):
    """A tool call's result was stored as the session's next message."""

    call_id: str
    tool: str
    ok: bool
    result_hash: str
    reason: str | None = None


class SessToolDenied(_Payload):
    """The Tool Gate refused a call the model asked for (the model gets an error
    result): unknown tool, capability not held, or arguments that fail the schema."""

    call_id: str
    tool: str
    reason: str
    detail: str


class SessToolResolved(_Payload):
    """An operator said what happened to a side-effecting call cut off mid-way."""

    call_id: str
    outcome: str
    by: str


class SessUnknownSideEffect(_Payload):
    """A side-effecting call has an intent and no result: held for an operator."""

    call_id: str
    tool: str


# -- FR-EVT-SESS-CONSENT-* and workspace ------------------------------------------------------
class SessConsentRequested(_Payload):
    """The session waits for consent to send its data to a cloud provider."""

    provider: str
    root_id: str


class SessConsentDecided(_Payload):
    """Consent for a provider in this session tree was granted or denied."""

    provider: str
    by: str
    note: str | None = None


class SessWorkspaceConflict(_Payload):
    """A write to a workspace path held by another session was refused."""

    path: str
    holder_session_id: str
    reason: str


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


class SchedRetried(_Payload):
    """The job was queued again with ``attempt`` (a restart or a recovery)."""

    attempt: int
    delay: float
    reason: str


class SchedThrottled(_Payload):
    """A queued job could not be dispatched yet: ``limit`` says which limit held it."""

    limit: str


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
    "FR-EVT-SESS-TOOL-UNKNOWN-SIDE-EFFECT": SessUnknownSideEffect,
    "FR-EVT-SESS-CONSENT-REQUESTED": SessConsentRequested,
    "FR-EVT-SESS-CONSENT-GRANTED": SessConsentDecided,
    "FR-EVT-SESS-CONSENT-DENIED": SessConsentDecided,
    "FR-EVT-SESS-WORKSPACE-CONFLICT": SessWorkspaceConflict,
    "FR-EVT-SESS-CRASHED": SessCrashed,
    "FR-EVT-SESS-RESTARTED": SessRestarted,
    "FR-EVT-SESS-RECOVERED": SessRecovered,
    "FR-EVT-SESS-HOST": SessHost,
    "FR-EVT-SESS-COMPACTED": SessCompacted,
    "FR-EVT-SESS-SCHED-ENQUEUED": SchedEnqueued,
    "FR-EVT-SESS-SCHED-DISPATCHED": SchedDispatched,
    "FR-EVT-SESS-SCHED-COMPLETED": SchedCompleted,
    "FR-EVT-SESS-SCHED-FAILED": SchedFailed,
    "FR-EVT-SESS-SCHED-CANCELLED": SchedCancelled,
    "FR-EVT-SESS-SCHED-RETRIED": SchedRetried,
    "FR-EVT-SESS-SCHED-THROTTLED": SchedThrottled,
    "FR-EVT-SESS-SPAWN-REQUESTED": SpawnRequested,
    "FR-EVT-SESS-SPAWN-ACCEPTED": SpawnAccepted,
    "FR-EVT-SESS-SPAWN-REJECTED": SpawnRejected,
    "FR-EVT-SESS-SPAWN-ANNOUNCED": SpawnAnnounced,
}

NOT_YET_EMITTED: dict[str, str] = {
    "FR-EVT-SESS-PAUSED": "pause and resume controls (issue 21)",
    "FR-EVT-SESS-RESUMED": "pause and resume controls (issue 21)",
    "FR-EVT-SESS-CONSENT-REQUESTED": "the consent gate (issue 18)",
    "FR-EVT-SESS-CONSENT-GRANTED": "the consent gate (issue 18)",
    "FR-EVT-SESS-CONSENT-DENIED": "the consent gate (issue 18)",
    "FR-EVT-SESS-WORKSPACE-CONFLICT": "workspace path leases (issue 20)",
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
    """The payload validated and serialized as JSON (what the event row stores)."""
    try:
        return _validated(event_type, payload).model_dump_json()
    except ValueError as exc:  # pydantic's serialization error: a value JSON cannot hold
        if isinstance(exc, InvalidInput):
            raise
        raise InvalidInput(f"bad payload for {event_type}: {exc}", event_type=event_type) from exc
