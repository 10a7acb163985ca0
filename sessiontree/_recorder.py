"""The Flight Recorder's part of the :class:`~sessiontree.Runtime` API: reading events
and spans, recording the host's own events, retention, export, OpenTelemetry.

``Runtime`` inherits :class:`FlightRecorderAPI`; the catalogue of event types is
:func:`event_catalog`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

import sessiontree._otel as _otel
from sessiontree._checks import check_id
from sessiontree._errors import InvalidInput
from sessiontree._views import EventInfo, SpanInfo, event_info, span_info
from sessiontree.persistence import recorder
from sessiontree.persistence.artifacts import canonical_bytes
from sessiontree.persistence.events import EVENT_SCHEMAS, NOT_YET_EMITTED, family
from sessiontree.persistence.export import ExportReport, export_tree
from sessiontree.persistence.records import CommitSummary
from sessiontree.persistence.retention import CompactionReport, RetentionPolicy, compact
from sessiontree.persistence.store import Store


class EventTypeInfo(BaseModel):
    """One registered Flight Recorder event type: its family, what it records, the JSON
    Schema its payload must fit, and -- for a type whose producing feature is not built
    yet -- what will write it."""

    model_config = ConfigDict(frozen=True)

    type: str
    family: str
    description: str
    payload_schema: dict[str, Any]
    not_yet_emitted: str | None = None


def event_catalog() -> list[EventTypeInfo]:
    """Every registered event type, in the registry's order (``sessiontree events
    --catalog``)."""
    out = []
    for name, schema in EVENT_SCHEMAS.items():
        doc = " ".join((schema.__doc__ or "").split())
        out.append(EventTypeInfo(type=name, family=family(name), description=doc,
                                 payload_schema=schema.model_json_schema(),
                                 not_yet_emitted=NOT_YET_EMITTED.get(name)))
    return out


def _opt_str(name: str, value: Any) -> None:
    if value is not None and not isinstance(value, str):
        raise InvalidInput(f"{name} must be a str")


def _opt_time(name: str, value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise InvalidInput(f"{name} must be a number (seconds since the epoch, store time)")


class FlightRecorderAPI:
    """The Flight Recorder methods of :class:`~sessiontree.Runtime`."""

    _store: Store

    def _check_open(self) -> None:
        raise NotImplementedError

    def events(
        self, *, session_id: str | None = None, root_id: str | None = None,
        type_prefix: str | None = None, job_id: str | None = None, since: float | None = None,
        until: float | None = None, after: int = 0, limit: int | None = None,
        **unknown: Any,
    ) -> list[EventInfo]:
        """Flight Recorder events in the order they were written, filtered by session
        (``model_session_id``), by tree (``root_id``: any session of the tree), by
        type prefix (e.g. ``"FR-EVT-SESS-SPAWN-"``), by ``job_id`` (the model_run that
        wrote them), by time (``since`` inclusive, ``until`` exclusive, store time),
        after a sequence number (``EventInfo.seq``), at most ``limit``. Every filter has
        an index. Raises :class:`InvalidInput` for a bad filter value,
        :class:`UnknownSession` for a ``root_id`` that names no session; an unknown filter
        name is :class:`InvalidInput` too."""
        self._check_open()
        if unknown:
            raise InvalidInput(f"unknown event filter(s) {', '.join(sorted(unknown))}; use "
                               "session_id, root_id, type_prefix, job_id, since, until, after, limit")
        for name, value in (("session_id", session_id), ("root_id", root_id),
                            ("type_prefix", type_prefix), ("job_id", job_id)):
            _opt_str(name, value)
            if value is not None:
                check_id(name, value)  # a str that can be stored (no lone surrogates)
        _opt_time("since", since)
        _opt_time("until", until)
        if not isinstance(after, int) or isinstance(after, bool) or after < 0:
            raise InvalidInput("after must be an int >= 0")
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
            raise InvalidInput("limit must be an int >= 0")
        if root_id is not None:
            root_id = self._store.session(root_id).root_id
        return [event_info(e) for e in self._store.events(
            session_id=session_id, root_id=root_id, type_prefix=type_prefix, job_id=job_id,
            since=since, until=until, after=after, limit=limit)]

    def spans(
        self, *, session_id: str | None = None, root_id: str | None = None,
        job_id: str | None = None,
    ) -> list[SpanInfo]:
        """Spans by start time: a whole tree's trace (``root_id``, any session of the
        tree), one session's (its life, its model_runs, its tool calls) or one job's.
        Raises :class:`UnknownSession`, :class:`InvalidInput` when none is given."""
        for name, value in (("session_id", session_id), ("root_id", root_id),
                            ("job_id", job_id)):
            _opt_str(name, value)
        if session_id is None and root_id is None and job_id is None:
            raise InvalidInput("give session_id, root_id or job_id")
        return [span_info(s) for s in recorder.spans(
            self._store, session_id=session_id, root_id=root_id, job_id=job_id)]

    def record_event(
        self, session_id: str, name: str, data: dict[str, Any] | None = None
    ) -> None:
        """Record an event of the host's own (``FR-EVT-SESS-HOST``) about a session:
        ``name`` (letters, digits, ``_.:-``) and JSON ``data``, validated like every
        payload. Raises :class:`UnknownSession`, :class:`InvalidInput`."""
        self._check_open()
        if not isinstance(session_id, str):
            raise InvalidInput("session_id must be a str")
        self._store.session(session_id)
        payload = {"name": name, "data": {} if data is None else data}
        try:
            canonical_bytes(payload)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"event data must be JSON: {exc}") from exc
        with self._store.transaction() as tx:
            tx.event("FR-EVT-SESS-HOST", session_id, None, payload)

    def compact(self, policy: RetentionPolicy, *, dry_run: bool = False) -> CompactionReport:
        """Remove old Flight Recorder events under ``policy`` (never a live session's,
        never a message or a span) and record what was removed as
        ``FR-EVT-SESS-COMPACTED`` events. ``dry_run`` only counts."""
        self._check_open()
        if not isinstance(policy, RetentionPolicy):
            raise InvalidInput("policy must be a sessiontree.RetentionPolicy")
        return compact(self._store, policy, dry_run=dry_run)

    def export_tree(self, session_id: str, out: str | Path) -> ExportReport:
        """Write the tree under ``session_id`` (sessions, messages with their bodies,
        tool calls, artifacts, events, spans) to ``out`` as JSON Lines; check it with
        :func:`verify_export`. Raises :class:`UnknownSession`."""
        if not isinstance(out, str | Path):
            raise InvalidInput("out must be a path")
        return export_tree(self._store, session_id, out)

    def add_span_processor(self, processor: Any, *, resource: Any = None) -> Callable[[], None]:
        """Hand every span that ends from now on to an OpenTelemetry ``SpanProcessor``
        (``on_end``), with the GenAI semantic conventions (extra ``otel``). It is called
        on the committing thread: use a ``BatchSpanProcessor``. Returns a function that
        stops it."""
        self._check_open()
        _otel.check_processor(processor)
        _otel._require_sdk()
        store = self._store

        def heard(summary: CommitSummary) -> None:
            if summary.spans_ended:
                _otel.emit(processor, recorder.spans_by_key(store, summary.spans_ended),
                           resource)

        store.add_listener(heard)
        return lambda: store.remove_listener(heard)

    def export_spans(self, processor: Any, root_id: str, *, resource: Any = None) -> int:
        """Hand the ended spans of a stored tree (any session of it) to an OpenTelemetry
        ``SpanProcessor``, as :meth:`add_span_processor` does live; return how many."""
        _otel.check_processor(processor)
        return _otel.emit(processor, recorder.spans(self._store, root_id=root_id), resource)
