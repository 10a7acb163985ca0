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

from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticSerializationError

from sessiontree._errors import InvalidInput
from sessiontree.persistence.payloads import (
    SessAutoShutdown,
    SessBudgetExceeded,
    SessCheckpoint,
    SessCompacted,
    SessCrashed,
    SessCreated,
    SessEnded,
    SessGroupRestart,
    SessGroupStarted,
    SessHost,
    SessMessage,
    SessPaused,
    SessRecovered,
    SessRestarted,
    SessResumed,
    SessRetried,
    SessState,
    SessStopped,
    SessStoreLost,
    SessSupervisorGaveUp,
    SessToolDenied,
    SessToolIntent,
    SessToolResolved,
    SessToolResult,
    SessUnknownSideEffect,
    SessUsage,
    _Payload,
)
from sessiontree.persistence.payloads_control import ControlSettled
from sessiontree.persistence.payloads_more import (
    CapabilityExpired,
    CapabilityIssued,
    CapabilityRevoked,
    ConsentDecided,
    ConsentRequested,
    SchedCancelled,
    SchedCompleted,
    SchedCooldown,
    SchedDispatched,
    SchedEnqueued,
    SchedFailed,
    SchedRetried,
    SchedThrottled,
    SpawnAccepted,
    SpawnAnnounced,
    SpawnRejected,
    SpawnRequested,
    WorkspaceBound,
    WorkspaceConflict,
    WorkspaceLeased,
    WorkspaceMerged,
    WorkspaceReleased,
    WorkspaceWorktree,
)

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
    "FR-EVT-SESS-CONTROL-APPLIED": ControlSettled,
    "FR-EVT-SESS-CONTROL-REFUSED": ControlSettled,
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

NOT_YET_EMITTED: dict[str, str] = {}
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
    try:  # the model's own validator, without model_validate's wrapper
        return schema.__pydantic_validator__.validate_python(payload)  # type: ignore[no-any-return]
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
        return model.__pydantic_serializer__.to_json(model).decode()
    except PydanticSerializationError:
        return json.dumps(model.model_dump(mode="json"), separators=(",", ":"))
    except ValueError as exc:  # pydantic's serialization error: a value JSON cannot hold
        if isinstance(exc, InvalidInput):
            raise
        raise InvalidInput(f"bad payload for {event_type}: {exc}", event_type=event_type) from exc
