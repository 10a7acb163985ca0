"""The span verbs of a write transaction: open, charge and close spans, written at commit.

Like events, spans are buffered in the transaction and written by :meth:`flush` in one
statement: an upsert keyed by ``(trace_id, span_id)``. Opening inserts the row; a later
transaction's close (or usage) meets the stored row and only sets what it knows: the
end, the status, tokens and cost added, the highest attempt. Opening a span again
changes nothing but its attempt. A verb that may be the first to write a span writes it
whole (``open_span`` then ``close_span``), so a stored span is never a stand-in.
"""

from __future__ import annotations

import functools
from typing import Any

from sessiontree._budget import Usage
from sessiontree.persistence import convert
from sessiontree.persistence.spans import span_id
from sessiontree.persistence.txbase import TxBase

_SPAN_COLS = ("trace_id", "span_id", "parent_span_id", "kind", "name", "model_session_id",
              "root_id", "job_id", "call_id", "start_ts", "end_ts", "status", "status_detail",
              "input_tokens", "output_tokens", "cost", "attempt", "attributes")
_ROWS_PER_UPSERT = 128


@functools.lru_cache(maxsize=_ROWS_PER_UPSERT)
def _upsert_sql(rows: int) -> str:
    names = ", ".join(f'"{c}"' for c in _SPAN_COLS)
    one = f"({', '.join('?' * len(_SPAN_COLS))})"
    return (
        f'INSERT INTO "span" ({names}) VALUES {", ".join([one] * rows)} '
        'ON CONFLICT ("trace_id", "span_id") DO UPDATE SET '
        '"end_ts" = COALESCE(excluded."end_ts", "span"."end_ts"), '
        '"status" = COALESCE(excluded."status", "span"."status"), '
        '"status_detail" = COALESCE(excluded."status_detail", "span"."status_detail"), '
        '"input_tokens" = "span"."input_tokens" + excluded."input_tokens", '
        '"output_tokens" = "span"."output_tokens" + excluded."output_tokens", '
        '"cost" = "span"."cost" + excluded."cost", '
        '"attempt" = MAX("span"."attempt", excluded."attempt")'
    )


# Positions in a buffered span row (a list in _SPAN_COLS order: flushed as it is).
(_PARENT, _NAME, _JOB, _CALL, _START, _END, _STATUS, _DETAIL, _IN, _OUT, _COST, _ATTEMPT,
 _ATTRS) = (2, 4, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17)


@functools.lru_cache(maxsize=1024)
def _attributes_json(items: tuple[tuple[str, Any], ...]) -> str:
    """A span's attributes as JSON: most repeat (a model_run's provider, model, role)."""
    return convert.dumps(dict(items))


class SpanTx(TxBase):
    """Span verbs (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._spans: dict[tuple[str, str], list[Any]] = {}
        self._run_usage: dict[str, Usage] = {}  # charged here to runs still going
        self._ended_runs: list[str] = []  # runs whose span this transaction wrote whole

    def charge_run(self, job_id: str, usage: Usage) -> None:
        """Remember what a running model_run was charged: its span is written once, when
        the run ends, with all of it (``run_usage``), not in every commit that charges."""
        before = self._run_usage.get(job_id)
        self._run_usage[job_id] = usage if before is None else before + usage

    def take_run_usage(self, job_id: str) -> tuple[Usage | None, Usage | None]:
        """What the run was charged (before this transaction as far as this process saw
        it -- None if it saw nothing, e.g. after a restart -- and in it); its span is
        being written whole, so the process forgets it at commit."""
        self._ended_runs.append(job_id)
        known = self._shared.run_charged(job_id) if self._shared is not None else None
        return known, self._run_usage.pop(job_id, None)

    def publish(self) -> None:
        super().publish()
        cache = self._cache
        if cache is None:
            return
        for job_id in self._ended_runs:
            cache.run_usage.pop(job_id, None)
        for job_id, usage in self._run_usage.items():
            before = cache.run_usage.get(job_id)
            cache.run_usage[job_id] = usage if before is None else before + usage

    def _span(self, subject_id: str, kind: str, session_id: str, root_id: str) -> list[Any]:
        """This transaction's buffered row for a span (a stand-in, used only if the
        span was never opened, until ``open_span`` fills it)."""
        trace, span = span_id(root_id, 32), span_id(subject_id, 16)
        row = self._spans.get((trace, span))
        if row is None:
            row = self._spans[(trace, span)] = [
                trace, span, None, kind, kind, session_id, root_id, None, None, self.now, None,
                None, None, 0, 0, 0.0, 0, "{}"]
        return row

    def open_span(
        self, kind: str, subject_id: str, *, session_id: str, root_id: str,
        parent: str | None, name: str, job_id: str | None = None, call_id: str | None = None,
        attempt: int = 0, attributes: dict[str, Any] | None = None, start: float | None = None,
    ) -> None:
        """Open the span of ``subject_id`` (a session, job or call id) at ``start``
        (default now); a span already stored keeps its own start."""
        row = self._span(subject_id, kind, session_id, root_id)
        row[_PARENT], row[_NAME], row[_JOB], row[_CALL] = parent, name, job_id, call_id
        row[_START] = self.now if start is None else start
        row[_ATTRS] = _attributes_json(tuple(attributes.items())) if attributes else "{}"
        if attempt > row[_ATTEMPT]:
            row[_ATTEMPT] = attempt

    def close_span(
        self, kind: str, subject_id: str, *, session_id: str, root_id: str, status: str,
        detail: str | None = None, attempt: int = 0, usage: Usage | None = None,
    ) -> None:
        """Close the span of ``subject_id`` now with ``status`` (and add ``usage``)."""
        row = self._span(subject_id, kind, session_id, root_id)
        row[_END], row[_STATUS], row[_DETAIL] = self.now, status, detail
        if attempt > row[_ATTEMPT]:
            row[_ATTEMPT] = attempt
        if usage is not None:
            row[_IN] += usage.input_tokens
            row[_OUT] += usage.output_tokens
            row[_COST] += usage.cost
        self.summary.spans_ended.append((row[0], row[1]))

    def add_span_usage(
        self, subject_id: str, *, session_id: str, root_id: str, kind: str, usage: Usage,
    ) -> None:
        """Add model usage to the span of ``subject_id`` (open or closed)."""
        row = self._span(subject_id, kind, session_id, root_id)
        row[_IN] += usage.input_tokens
        row[_OUT] += usage.output_tokens
        row[_COST] += usage.cost

    def flush(self) -> None:
        super().flush()
        if self._spans:
            rows = list(self._spans.values())
            for start in range(0, len(rows), _ROWS_PER_UPSERT):
                chunk = rows[start : start + _ROWS_PER_UPSERT]
                self._exec(_upsert_sql(len(chunk)), [v for row in chunk for v in row])
            self._spans.clear()
