"""Reason codes are data: one enum a program can switch on, shared by errors and events."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    # spawn rejections
    DEPTH_LIMIT = "depth_limit"
    SPAWN_CAP = "spawn_cap"
    BUDGET = "budget"
    CAPABILITY_DENIED = "capability_denied"
    PAUSED = "paused"
    PARENT_NOT_ACTIVE = "parent_not_active"
    UNKNOWN_PROVIDER = "unknown_provider"
    # session endings and holds
    COMPLETED = "completed"
    BUDGET_EXCEEDED = "budget_exceeded"
    CANCELLED_BY_OPERATOR = "cancelled_by_operator"
    CANCELLED_BY_HOST = "cancelled_by_host"
    PARENT_ENDED = "parent_ended"
    SIBLING_FAILED = "sibling_failed"
    SIBLING_RESTART = "sibling_restart"
    CRASHED = "crashed"
    RESTART_INTENSITY = "restart_intensity"
    UNKNOWN_SIDE_EFFECT = "unknown_side_effect"
    PROVIDER_UNAVAILABLE = "provider_unavailable"
    OPERATOR_FAILED = "operator_failed"
    # scheduler
    GLOBAL_LIMIT = "global_limit"
    PROVIDER_LIMIT = "provider_limit"
    SESSION_BUSY = "session_busy"
    BACKOFF = "backoff"
    RECOVERED = "recovered"
    # tools
    UNKNOWN_TOOL = "unknown_tool"
    INVALID_ARGS = "invalid_args"
    TOOL_ERROR = "tool_error"
    # errors
    INVALID_INPUT = "invalid_input"
    UNKNOWN_SESSION = "unknown_session"
    ILLEGAL_TRANSITION = "illegal_transition"
    WORKSPACE_CONFLICT = "workspace_conflict"
    STORE_ERROR = "store_error"
    SCHEMA_VERSION = "schema_version"
    STORE_IN_USE = "store_in_use"
    CORRUPT_STORE = "corrupt_store"
    RECOVERY_ERROR = "recovery_error"
    RUNTIME_CLOSED = "runtime_closed"
    TIMEOUT = "timeout"
    SCHEDULER_DIED = "scheduler_died"
    STORE_LOST = "store_lost"
    STORE_REPLACED = "store_replaced"
