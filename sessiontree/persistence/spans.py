"""Spans: where in a session tree's life an event happened, and how long each part took.

Three kinds, persisted in the ``span`` table by the transaction that ends them (so spans
and events always agree):

- a **ModelSessionSpan** (``kind = "session"``) for each session's life, from its
  creation to its terminal state;
- an **ActivitySpan** for each model_run job (``kind = "model_run"``): from its first
  dispatch to the job's end, with the tokens and cost it was charged; a restarted job
  keeps its span (``attempt`` counts its attempts);
- an **ActivitySpan** for each tool call (``kind = "tool_call"``): from when the model
  asked for it to its result (or its denial, or its session's end).

Each row is written once, whole, when its span ends (a restart writes a model_run's
early, so its start survives), in a commit that happens anyway: a commit that touches
the span table writes a leaf page or more, so one row a span keeps the cost down. While
a span is open, reads show it from its session, job or journal row (``recorder.spans``).

Parents: a model_run's parent is its session's span; a tool call's is the model_run that
ran it; a root session's span has none; a child session's span is the ``spawn_session``
tool call that created it. So **one trace holds a whole tree** (``trace_id`` is derived
from the root's id), and a child's activities nest under the parent's spawning call.

Ids are derived from the ids they describe (:func:`span_id`), so an event names its span
without a lookup: ``trace_id = span_id(root_id, 32)``; a span id is
``span_id(session_id | job_id | call_id, 16)`` -- 128-bit and 64-bit hex, the sizes
OpenTelemetry uses.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

import blake3

SESSION, MODEL_RUN, TOOL_CALL = "session", "model_run", "tool_call"
KINDS = (SESSION, MODEL_RUN, TOOL_CALL)

OK, ERROR, CANCELLED = "ok", "error", "cancelled"
"""Span statuses once closed (an open span has none). Cancellation is not an error."""


@functools.lru_cache(maxsize=8192)
def span_id(text: str, size: int) -> str:
    """A stable id derived from ``text`` (trace and span ids; idempotency keys)."""
    return blake3.blake3(text.encode()).hexdigest()[:size]


def trace_id_of(root_id: str) -> str:
    """The trace of a session tree (every session of it shares its root's)."""
    return span_id(root_id, 32)


def session_span(session_id: str) -> str:
    return span_id(session_id, 16)


def job_span(job_id: str) -> str:
    return span_id(job_id, 16)


def call_span(call_id: str) -> str:
    return span_id(call_id, 16)


@dataclass(frozen=True)
class SpanRecord:
    """One stored span. ``end``/``status`` are None while it is open; tokens and cost
    are the model usage charged inside it (a session span: the session's own usage)."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    kind: str
    name: str
    model_session_id: str
    root_id: str
    job_id: str | None
    call_id: str | None
    start: float
    end: float | None
    status: str | None
    status_detail: str | None
    input_tokens: int
    output_tokens: int
    cost: float
    attempt: int
    attributes: dict[str, Any]

    @property
    def duration(self) -> float | None:
        return None if self.end is None else max(0.0, self.end - self.start)


def session_span_attributes(row: Any) -> dict[str, Any]:
    """A session span's attributes, from its session row (or record)."""
    return {"role": row.role, "provider": row.provider, "model": row.model,
            "depth": row.depth, "parent_id": row.parent_id}


def session_parent_span(execute: Any, session_id: str, parent_id: str | None) -> str | None:
    """A session span's parent: the ``spawn_session`` call that made the child (named in
    its task message's provenance), else the parent's session span; a root has none.
    ``execute`` runs one SQL statement (a transaction's or the store's connection)."""
    if parent_id is None:
        return None
    for (text,) in execute('SELECT "provenance" FROM "message" WHERE "session_id" = ? '
                           'AND "seq" <= 2 AND "role" = ?', (session_id, "user")).fetchall():
        call = json.loads(text).get("call_id")
        if call:
            return span_id(call, 16)
    return span_id(parent_id, 16)
