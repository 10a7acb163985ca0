"""Row -> record conversion (the only place that knows both shapes)."""

from __future__ import annotations

import functools
import json
from typing import Any, TypeVar

from sessiontree._budget import Budget, Usage
from sessiontree.persistence.records import (
    CheckpointRecord,
    EventRecord,
    JobRecord,
    SessionRecord,
    ToolCallRecord,
)

R = TypeVar("R")


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


@functools.lru_cache(maxsize=4096)
def usage_of(text: str) -> Usage:
    """Parsed once per distinct text: usages are immutable, and few texts recur often."""
    return Usage.model_validate_json(text)


@functools.lru_cache(maxsize=1024)
def budget_of(text: str) -> Budget:
    return Budget.model_validate_json(text)


@functools.lru_cache(maxsize=4096)
def tuple_of(text: str) -> tuple[Any, ...]:
    """A JSON list as a tuple, parsed once per distinct text (capabilities, call ids)."""
    return tuple(json.loads(text))


def dict_of(text: str) -> dict[str, Any]:
    return {} if text == "{}" else dict(json.loads(text))


def _made(cls: type[R], **fields: Any) -> R:
    """A record of ``cls`` from fields read back from the store (so already of the right
    types), without the frozen dataclass ``__init__`` (one ``object.__setattr__`` a field:
    ~10 us for a session record, made several times a model_run)."""
    record = object.__new__(cls)
    record.__dict__.update(fields)
    return record


def session(row: Any) -> SessionRecord:
    return _made(
        SessionRecord,
        id=row.id,
        parent_id=row.parent_id,
        root_id=row.root_id,
        depth=row.depth,
        spawn_index=row.spawn_index,
        role=row.role,
        state=row.state,
        state_reason=row.state_reason,
        provider=row.provider,
        model=row.model,
        capabilities=tuple_of(row.capabilities),
        budget=budget_of(row.budget),
        usage=usage_of(row.usage),
        children_spent=usage_of(row.children_spent),
        carved=usage_of(row.carved),
        spawn_count=row.spawn_count,
        max_children=row.max_children,
        restart=row.restart,
        child_strategy=row.child_strategy,
        restart_log=tuple_of(row.restart_log),
        shutdown=row.shutdown,
        significant=bool(row.significant),
        auto_shutdown=row.auto_shutdown,
        child_max_restarts=row.child_max_restarts,
        child_period=row.child_period,
        child_restart_log=tuple_of(row.child_restart_log),
        keep_open=bool(row.keep_open),
        workspace=row.workspace,
        task_hash=row.task_hash,
        summary_hash=row.summary_hash,
        checkpoint_seq=row.checkpoint_seq,
        message_seq=row.message_seq,
        message_head=row.message_head,
        meta=dict_of(row.meta),
        created_at=row.created_at,
        updated_at=row.updated_at,
        ended_at=row.ended_at,
    )


def job(row: Any) -> JobRecord:
    return _made(
        JobRecord,
        id=row.id,
        order=row.order,
        session_id=row.session_id,
        root_id=row.root_id,
        kind=row.kind,
        state=row.state,
        attempt=row.attempt,
        provider=row.provider,
        not_before=row.not_before,
        reason=row.reason,
        created_at=row.created_at,
        input_hash=row.input_hash,
        input_seq=row.input_seq,
    )


def tool_call(row: Any) -> ToolCallRecord:
    return _made(
        ToolCallRecord,
        id=row.id,
        session_id=row.session_id,
        job_id=row.job_id,
        message_seq=row.message_seq,
        idx=row.idx,
        tool=row.tool,
        args_hash=row.args_hash,
        idempotency_key=row.idempotency_key,
        effect=row.effect,
        state=row.state,
        result_hash=row.result_hash,
        attempts=row.attempts,
    )


def checkpoint(row: Any) -> CheckpointRecord:
    return _made(
        CheckpointRecord,
        session_id=row.session_id,
        seq=row.seq,
        state=row.state,
        message_seq=row.message_seq,
        message_head=row.message_head,
        open_tool_calls=tuple_of(row.open_tool_calls),
        awaited_children=tuple_of(row.awaited_children),
        usage=usage_of(row.usage),
        job_id=row.job_id,
        attempt=row.attempt,
        created_at=row.created_at,
    )


def event(row: tuple[Any, ...], payload: dict[str, Any]) -> EventRecord:
    """An event record from the columns of ``Store.events_sql`` (in that order)."""
    return _made(EventRecord, seq=row[0], event_id=row[1], ts=row[2], type=row[3],
                 model_session_id=row[4], root_id=row[5], job_id=row[6], trace_id=row[7],
                 span_id=row[8], payload=payload)
