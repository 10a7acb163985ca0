"""The span verbs of a write transaction: open, charge and close spans, written at commit.

Like events, spans are buffered in the transaction and written by :meth:`flush` in one
statement: an upsert keyed by ``(trace_id, span_id)``. Opening inserts the row; a later
transaction's close (or usage) meets the stored row and only sets what it knows: the
end, the status, tokens and cost added, the highest attempt. Opening a span again (a
restarted job dispatched anew) changes nothing but its attempt.
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


class SpanTx(TxBase):
    """Span verbs (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._spans: dict[tuple[str, str], dict[str, Any]] = {}

    def _span(self, trace: str, span: str, kind: str, session_id: str, root_id: str) -> dict[str, Any]:
        """This transaction's buffered row for a span (a stand-in, used only if the
        span was never opened, until ``open_span`` fills it)."""
        key = (trace, span)
        row = self._spans.get(key)
        if row is None:
            row = self._spans[key] = {
                "trace_id": trace, "span_id": span, "parent_span_id": None, "kind": kind,
                "name": kind, "model_session_id": session_id, "root_id": root_id,
                "job_id": None, "call_id": None, "start_ts": self.now, "end_ts": None,
                "status": None, "status_detail": None, "input_tokens": 0, "output_tokens": 0,
                "cost": 0.0, "attempt": 0, "attributes": "{}",
            }
        return row

    def open_span(
        self, kind: str, subject_id: str, *, session_id: str, root_id: str,
        parent: str | None, name: str, job_id: str | None = None, call_id: str | None = None,
        attempt: int = 0, attributes: dict[str, Any] | None = None,
    ) -> None:
        """Open the span of ``subject_id`` (a session, job or call id) now."""
        row = self._span(span_id(root_id, 32), span_id(subject_id, 16), kind, session_id, root_id)
        row.update(parent_span_id=parent, name=name, job_id=job_id, call_id=call_id,
                   start_ts=self.now, attributes=convert.dumps(attributes or {}))
        row["attempt"] = max(row["attempt"], attempt)

    def close_span(
        self, kind: str, subject_id: str, *, session_id: str, root_id: str, status: str,
        detail: str | None = None, attempt: int = 0, usage: Usage | None = None,
    ) -> None:
        """Close the span of ``subject_id`` now with ``status`` (and add ``usage``)."""
        trace, span = span_id(root_id, 32), span_id(subject_id, 16)
        row = self._span(trace, span, kind, session_id, root_id)
        row.update(end_ts=self.now, status=status, status_detail=detail)
        row["attempt"] = max(row["attempt"], attempt)
        if usage is not None:
            self.add_span_usage(subject_id, session_id=session_id, root_id=root_id, kind=kind,
                                usage=usage)
        self.summary.spans_ended.append((trace, span))

    def add_span_usage(
        self, subject_id: str, *, session_id: str, root_id: str, kind: str, usage: Usage,
    ) -> None:
        """Add model usage to the span of ``subject_id`` (open or closed)."""
        row = self._span(span_id(root_id, 32), span_id(subject_id, 16), kind, session_id, root_id)
        row["input_tokens"] += usage.input_tokens
        row["output_tokens"] += usage.output_tokens
        row["cost"] += usage.cost

    def flush(self) -> None:
        super().flush()
        if self._spans:
            rows = [tuple(r[c] for c in _SPAN_COLS) for r in self._spans.values()]
            for start in range(0, len(rows), _ROWS_PER_UPSERT):
                chunk = rows[start : start + _ROWS_PER_UPSERT]
                self._exec(_upsert_sql(len(chunk)), [v for row in chunk for v in row])
            self._spans.clear()
