"""Plain, immutable views of stored rows, handed out by the store."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sessiontree._budget import Budget, Usage


@dataclass(frozen=True)
class SessionRecord:
    id: str
    parent_id: str | None
    root_id: str
    depth: int
    spawn_index: int
    role: str
    state: str
    state_reason: str | None
    provider: str
    model: str
    capabilities: tuple[str, ...]
    budget: Budget
    usage: Usage
    children_spent: Usage
    carved: Usage
    spawn_count: int
    max_children: int | None
    restart: str
    child_strategy: str
    restart_log: tuple[float, ...]
    shutdown: float
    significant: bool
    auto_shutdown: str
    child_max_restarts: int
    child_period: float
    child_restart_log: tuple[float, ...]
    keep_open: bool
    workspace: str | None
    task_hash: str | None
    summary_hash: str | None
    checkpoint_seq: int
    message_seq: int
    message_head: str
    meta: dict[str, Any]
    created_at: float
    updated_at: float
    ended_at: float | None

    @property
    def spent(self) -> Usage:
        """Own usage plus what ended children's subtrees spent and live children hold."""
        return self.usage + self.children_spent + self.carved

    def available(self, reserved: Usage | None = None) -> Budget:
        spent = self.spent if reserved is None else self.spent + reserved
        return self.budget.remaining(spent)


@dataclass(frozen=True)
class JobRecord:
    id: str
    order: int
    session_id: str
    root_id: str
    kind: str
    state: str
    attempt: int
    provider: str
    not_before: float | None
    reason: str | None
    created_at: float
    input_hash: str | None = None
    input_seq: int | None = None


@dataclass(frozen=True)
class MessageRecord:
    session_id: str
    seq: int
    role: str
    artifact_hash: str
    chain_hash: str
    trust: str
    body: dict[str, Any]
    provenance: dict[str, Any]
    created_at: float


@dataclass(frozen=True)
class ToolCallRecord:
    id: str
    session_id: str
    job_id: str | None
    message_seq: int
    idx: int
    tool: str
    args_hash: str
    idempotency_key: str
    effect: str
    state: str
    result_hash: str | None
    attempts: int


@dataclass(frozen=True)
class CheckpointRecord:
    session_id: str
    seq: int
    state: str
    message_seq: int
    message_head: str
    open_tool_calls: tuple[str, ...]
    awaited_children: tuple[str, ...]
    usage: Usage
    job_id: str | None
    attempt: int
    created_at: float


@dataclass(frozen=True)
class MailboxEntry:
    id: int
    session_id: str
    kind: str
    sender_id: str
    body_hash: str
    body: dict[str, Any]
    created_at: float
    consumed_at: float | None


@dataclass(frozen=True)
class EventRecord:
    seq: int
    event_id: str
    ts: float
    type: str
    model_session_id: str | None
    root_id: str | None
    job_id: str | None
    trace_id: str | None
    span_id: str | None
    payload: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "ts": self.ts,
            "type": self.type,
            "model_session_id": self.model_session_id,
            "root_id": self.root_id,
            "job_id": self.job_id,
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "payload": self.payload,
        }


@dataclass
class CommitSummary:
    """What one committed transaction changed that live components care about."""

    states: list[tuple[str, str]] = field(default_factory=list)  # (session_id, new state)
    jobs: list[JobRecord] = field(default_factory=list)  # jobs inserted or re-queued
    cancelled_jobs: list[str] = field(default_factory=list)  # job ids cancelled in the store
    cancel_reasons: dict[str, str] = field(default_factory=dict)  # job id -> reason code
    messages: list[MessageRecord] = field(default_factory=list)  # appended, in order
    events: int = 0  # Flight Recorder events written (an event alone is a change too)
    spans_ended: list[tuple[str, str]] = field(default_factory=list)  # (trace_id, span_id)

    def __bool__(self) -> bool:
        return bool(self.states or self.jobs or self.cancelled_jobs or self.messages
                    or self.events or self.spans_ended)
