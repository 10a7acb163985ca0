"""Reason codes are data: one enum a program can switch on, shared by errors and events."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Why something was refused, ended, held or moved. Stored in events and rows."""

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
    AUTO_SHUTDOWN = "auto_shutdown"  # a significant child ended its parent (auto_shutdown)
    CLOSED = "closed"  # the host closed a conversational session
    # why a session moved between live states
    ENQUEUED = "enqueued"
    NEXT_TURN = "next_turn"
    CHILDREN = "children"
    CHILDREN_ANNOUNCED = "children_announced"
    RESTART = "restart"
    RESOLVED = "resolved"
    ANSWERED = "answered"  # a conversational session answered and waits (idle)
    MESSAGE = "message"  # the host sent a message to an idle session
    NEXT_MESSAGE = "next_message"  # a message that waited its turn is queued
    JOB_CANCELLED = "job_cancelled"  # the host cancelled the session's current job
    RETRIED = "retried"  # an operator retried a failed session
    RESUMED = "resumed"  # an operator resumed a paused session
    # scheduler
    GLOBAL_LIMIT = "global_limit"
    PROVIDER_LIMIT = "provider_limit"
    SESSION_BUSY = "session_busy"
    BACKOFF = "backoff"
    RECOVERED = "recovered"
    PROVIDER_COOLDOWN = "provider_cooldown"
    REQUESTS_PER_MINUTE = "requests_per_minute"
    TOKENS_PER_MINUTE = "tokens_per_minute"
    # provider failures (a ProviderError's reason; retryable ones cool the provider down)
    PROVIDER_AUTH = "provider_auth"
    PROVIDER_PERMISSION = "provider_permission"
    PROVIDER_NOT_FOUND = "provider_not_found"
    PROVIDER_QUOTA = "provider_quota"
    PROVIDER_BAD_REQUEST = "provider_bad_request"
    PROVIDER_RATE_LIMITED = "provider_rate_limited"
    PROVIDER_OVERLOADED = "provider_overloaded"
    PROVIDER_SERVER_ERROR = "provider_server_error"
    PROVIDER_CONNECTION = "provider_connection"
    PROVIDER_MALFORMED_REPLY = "provider_malformed_reply"
    PROVIDER_RETRIES_EXHAUSTED = "provider_retries_exhausted"
    COST_UNKNOWN = "cost_unknown"
    # tools, capabilities and consent
    CAPABILITY_EXPIRED = "capability_expired"
    CAPABILITY_REVOKED = "capability_revoked"
    SESSION_NOT_RUNNING = "session_not_running"
    NO_CHILDREN = "no_children"
    REVOKED_BY_HOST = "revoked_by_host"
    REVOKED_BY_OPERATOR = "revoked_by_operator"
    CONSENT_REQUIRED = "consent_required"
    CONSENT_GRANTED = "consent_granted"
    CONSENT_DENIED = "consent_denied"
    UNKNOWN_TOOL = "unknown_tool"
    INVALID_ARGS = "invalid_args"
    TOOL_ERROR = "tool_error"
    # workspace
    PATH_REFUSED = "path_refused"
    WORKSPACE_ERROR = "workspace_error"
    WORKSPACE_UNAVAILABLE = "workspace_unavailable"
    MCP_SERVER_UNAVAILABLE = "mcp_server_unavailable"
    # errors
    INVALID_INPUT = "invalid_input"
    UNKNOWN_SESSION = "unknown_session"
    ILLEGAL_TRANSITION = "illegal_transition"
    WORKSPACE_CONFLICT = "workspace_conflict"
    STORE_ERROR = "store_error"
    SCHEMA_VERSION = "schema_version"
    STORE_IN_USE = "store_in_use"
    CORRUPT_STORE = "corrupt_store"
    RUNTIME_CLOSED = "runtime_closed"
    TIMEOUT = "timeout"
    SCHEDULER_DIED = "scheduler_died"
    STORE_LOST = "store_lost"
    STORE_REPLACED = "store_replaced"
