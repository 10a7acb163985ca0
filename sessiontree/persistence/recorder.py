"""Flight Recorder reads beyond events (``Store.events``): spans.

Spans are keyed by trace, so a tree's spans are one range of one B-tree; a session's or
a job's are found within their tree's range.
"""

from __future__ import annotations

import json
from typing import Any

from sessiontree._errors import CorruptStore, UnknownSession
from sessiontree._states import TERMINAL_VALUES, JobState
from sessiontree.persistence.spans import (
    MODEL_RUN,
    SESSION,
    TOOL_CALL,
    SpanRecord,
    session_parent_span,
    session_span_attributes,
    span_id,
    trace_id_of,
)
from sessiontree.persistence.store import Store


def span_record(r: Any) -> SpanRecord:
    try:
        attributes = json.loads(r.attributes)
    except ValueError as exc:
        raise CorruptStore(f"span {r.span_id} attributes are not JSON") from exc
    return SpanRecord(
        trace_id=r.trace_id, span_id=r.span_id, parent_span_id=r.parent_span_id, kind=r.kind,
        name=r.name, model_session_id=r.model_session_id, root_id=r.root_id, job_id=r.job_id,
        call_id=r.call_id, start=r.start_ts, end=r.end_ts, status=r.status,
        status_detail=r.status_detail, input_tokens=r.input_tokens,
        output_tokens=r.output_tokens, cost=r.cost, attempt=r.attempt, attributes=attributes)


def spans(
    store: Store, *, session_id: str | None = None, root_id: str | None = None,
    job_id: str | None = None,
) -> list[SpanRecord]:
    """The spans of a tree (``root_id``: any session of it), of one session, or of one
    job (its model_run and its tool calls), by start time. Raises
    :class:`UnknownSession` for a session that does not exist."""
    where, params = [], []
    if job_id is not None:
        found = store._rows('SELECT "session_id" FROM "job" WHERE "id" = ?', (job_id,))
        if not found:
            return []
        session_id = session_id or found[0].session_id
        where.append('"job_id" = ?')
        params.append(job_id)
    anchor = session_id or root_id
    if anchor is None:
        raise UnknownSession("(none given)")
    tree_root = store.session(anchor).root_id
    if root_id is not None and store.session(root_id).root_id != tree_root:
        return []
    if session_id is not None:
        where.append('"model_session_id" = ?')
        params.append(session_id)
    trace = trace_id_of(tree_root)
    sql = 'SELECT * FROM "span" WHERE "trace_id" = ?' + "".join(f" AND {w}" for w in where)
    spans_found = [span_record(r) for r in store._rows(sql, (trace, *params))]
    stored = {s.span_id for s in spans_found}
    spans_found += _running(store, trace, tree_root, stored, session_id, job_id)
    spans_found += _open_calls(store, trace, tree_root, stored, session_id, job_id)
    if job_id is None:
        spans_found += _live_sessions(store, trace, tree_root, stored, session_id)
    return sorted(spans_found, key=lambda s: (s.start, s.span_id))


def _running(
    store: Store, trace: str, root_id: str, stored: set[str], session_id: str | None,
    job_id: str | None,
) -> list[SpanRecord]:
    """The spans of the tree's running model_runs not yet written (a run's span row is
    first written by its first commit), from their job rows."""
    out = []
    for job in store._rows('SELECT "id", "session_id", "started_at", "attempt" FROM "job" '
                           'WHERE "state" = ? AND "root_id" = ?', (JobState.RUNNING.value, root_id)):
        span = span_id(job.id, 16)
        if span in stored or job.started_at is None or (session_id or job.session_id) != (
                job.session_id) or (job_id or job.id) != job.id:
            continue
        s = store.session(job.session_id)
        out.append(SpanRecord(
            trace_id=trace, span_id=span, parent_span_id=span_id(s.id, 16), kind=MODEL_RUN,
            name=s.model, model_session_id=s.id, root_id=root_id, job_id=job.id, call_id=None,
            start=job.started_at, end=None, status=None, status_detail=None, input_tokens=0,
            output_tokens=0, cost=0.0, attempt=job.attempt,
            attributes={"provider": s.provider, "model": s.model, "role": s.role}))
    return out


def spans_by_key(store: Store, keys: list[tuple[str, str]]) -> list[SpanRecord]:
    """The stored spans with these ``(trace_id, span_id)`` keys (those that exist)."""
    out: list[SpanRecord] = []
    for start in range(0, len(keys), 200):
        chunk = keys[start : start + 200]
        marks = ", ".join(["(?, ?)"] * len(chunk))
        rows = store._rows(f'SELECT * FROM "span" WHERE ("trace_id", "span_id") IN (VALUES {marks})',
                           tuple(v for key in chunk for v in key))
        out.extend(span_record(r) for r in rows)
    return out


def _open_calls(
    store: Store, trace: str, root_id: str, stored: set[str], session_id: str | None,
    job_id: str | None,
) -> list[SpanRecord]:
    """The spans of the tree's tool calls still running or parked (a call's span row is
    written when it ends), from their journal rows."""
    rows = store._rows(
        'SELECT "id", "session_id", "job_id", "tool", "effect", "created_at" FROM "tool_call" '
        'WHERE "state" IN (?, ?) AND "session_id" IN (SELECT "id" FROM "session" '
        'WHERE "root_id" = ?)', ("intent", "waiting", root_id))
    out = []
    for c in rows:
        span = span_id(c.id, 16)
        if span in stored or (session_id or c.session_id) != c.session_id or (
                job_id or c.job_id) != c.job_id:
            continue
        out.append(SpanRecord(
            trace_id=trace, span_id=span, parent_span_id=span_id(c.job_id or c.session_id, 16),
            kind=TOOL_CALL, name=c.tool, model_session_id=c.session_id, root_id=root_id,
            job_id=c.job_id, call_id=c.id, start=c.created_at, end=None, status=None,
            status_detail=None, input_tokens=0, output_tokens=0, cost=0.0, attempt=0,
            attributes={"tool": c.tool, "effect": c.effect}))
    return out


def _live_sessions(
    store: Store, trace: str, root_id: str, stored: set[str], session_id: str | None,
) -> list[SpanRecord]:
    """The life spans of the tree's sessions that have not ended (a session's span row
    is written when it ends), from their session rows."""
    live = [s for s in store.sessions(root_id=root_id) if s.state not in TERMINAL_VALUES
            and (session_id or s.id) == s.id and span_id(s.id, 16) not in stored]
    if not live:
        return []
    with store._reading():
        execute = store.db.connection().execute  # type: ignore[no-untyped-call]
        parents = {s.id: session_parent_span(execute, s.id, s.parent_id) for s in live}
    return [SpanRecord(
        trace_id=trace, span_id=span_id(s.id, 16), parent_span_id=parents[s.id], kind=SESSION,
        name=s.role, model_session_id=s.id, root_id=root_id, job_id=None, call_id=None,
        start=s.created_at, end=None, status=None, status_detail=None, input_tokens=0,
        output_tokens=0, cost=0.0, attempt=0, attributes=session_span_attributes(s))
        for s in live]
