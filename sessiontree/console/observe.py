"""The Flight Recorder's commands: ``events`` (filters, ``--follow``, ``--catalog``),
``trace``, ``compact`` and ``export``.

``events``, ``trace`` and ``export`` only read a store (safe beside a live host);
``compact`` writes, so it takes the store's lease like ``resolve`` (beside a live host,
use ``Runtime.compact`` there).
"""

from __future__ import annotations

import argparse
import json
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from rich.text import Text
from rich.tree import Tree

from sessiontree._errors import InvalidInput, StoreInUse
from sessiontree._ids import new_id
from sessiontree._recorder import event_catalog
from sessiontree._runtime import LEASE_TTL
from sessiontree._states import TERMINAL_VALUES
from sessiontree._views import SpanInfo, span_info
from sessiontree.console._common import OK, CommandError, _console, _reader
from sessiontree.persistence import lease, recorder
from sessiontree.persistence.export import export_tree
from sessiontree.persistence.records import EventRecord
from sessiontree.persistence.retention import RetentionPolicy, compact
from sessiontree.persistence.store import Store

FOLLOW_POLL = 0.5
"""Seconds between looks for new events under ``events --follow``: another process
writes the store, so there is nothing to wait on but time; half a second feels live."""



# -- events -----------------------------------------------------------------------------
def _event_line(event: dict[str, Any]) -> str:
    when = datetime.fromtimestamp(event["ts"]).strftime("%H:%M:%S.%f")[:-3]
    payload = json.dumps(event["payload"], sort_keys=True, separators=(",", ":"))
    if len(payload) > 160:
        payload = payload[:157] + "..."
    return (f"{when}  {event['type']:<36} {event['model_session_id'] or '-':<25} "
            f"{event['job_id'] or '-':<25} {payload}")


def _time(text: str) -> float:
    """Seconds since the epoch, or an ISO 8601 date-time (local time unless it says)."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither seconds since the epoch nor an ISO 8601 date-time") from None


def _print_catalog(as_json: bool) -> int:
    entries = event_catalog()
    if as_json:
        for entry in entries:
            print(json.dumps(entry.model_dump(mode="json"), sort_keys=True))
        return OK
    for entry in entries:
        fields = entry.payload_schema.get("properties", {})
        required = set(entry.payload_schema.get("required", []))
        print(f"{entry.type}  [{entry.family}]")
        print(f"    {entry.description}")
        if entry.not_yet_emitted:
            print(f"    (registered; not emitted yet: written by {entry.not_yet_emitted})")
        for name, spec in fields.items():
            kind = spec.get("type") or " | ".join(
                str(o.get("type", "?")) for o in spec.get("anyOf", [])) or "any"
            print(f"      {name}: {kind}{'' if name in required else ' (optional)'}")
    print(f"({len(entries)} event types)")
    return OK


def _tree_done(store: Store, anchor: str | None) -> bool:
    """The tree of ``anchor`` (or every tree, once there is one) has ended."""
    if anchor is not None:
        root = store.session(store.session(anchor).root_id)
        return root.state in TERMINAL_VALUES
    total = store.count_sessions()
    return total > 0 and store.count_sessions(TERMINAL_VALUES) == total


def follow(
    store: Store, filters: dict[str, Any], emit: Callable[[EventRecord], None], *,
    until_done: bool, anchor: str | None, poll: float, stop: threading.Event,
) -> None:
    """Emit every matching event, then each new one as it is committed, until ``stop``
    is set or (``until_done``) the tree has ended and its last events were emitted."""
    after = 0
    while True:
        done = until_done and _tree_done(store, anchor)  # looked at before the last read
        for event in store.events(after=after, **filters):
            emit(event)
            after = event.seq
        if done or stop.wait(poll):
            return


def cmd_events(args: argparse.Namespace) -> int:
    if args.catalog:
        return _print_catalog(args.json)
    if args.db is None:
        raise CommandError("events needs --db PATH (or --catalog)")
    filters = {"session_id": args.session, "root_id": args.root, "type_prefix": args.type,
               "job_id": args.job, "since": args.since, "until": args.until}
    with _reader(args.db) as store:
        if args.session is not None:
            store.session(args.session)  # UnknownSession for a bad id
        if args.root is not None:  # any session of the tree names it
            filters["root_id"] = store.session(args.root).root_id
        if args.follow:
            def emit(event: EventRecord) -> None:
                data = event.as_json()
                print(json.dumps(data, sort_keys=True) if args.json else _event_line(data),
                      flush=True)

            follow(store, filters, emit, until_done=args.until_done,
                   anchor=args.session or args.root, poll=args.poll, stop=threading.Event())
            return OK
        events = store.events(limit=args.limit, **filters)
    if args.json:
        for event in events:
            print(json.dumps(event.as_json(), sort_keys=True))
        return OK
    print(f"{'time':<12}  {'type':<36} {'session':<25} {'job':<25} payload")
    for event in events:
        print(_event_line(event.as_json()))
    print(f"({len(events)} events)")
    return OK


# -- trace ------------------------------------------------------------------------------
def _label(span: SpanInfo) -> Text:
    text = Text()
    if span.kind == "session":
        text.append(f"{span.name} ", style="bold")
        text.append(span.model_session_id, style="dim")
    elif span.kind == "model_run":
        text.append(f"model_run {span.name} ", style="cyan")
        text.append(span.job_id or "", style="dim")
        if span.attempt > 1:
            text.append(f" attempt {span.attempt}")
    else:
        text.append(f"tool {span.name} ", style="magenta")
        text.append(span.call_id or "", style="dim")
    duration = span.duration
    text.append(f"  {duration:.3f}s" if duration is not None else "  open")
    status = span.status or "running"
    style = {"ok": "green", "error": "bold red", "cancelled": "magenta"}.get(status, "yellow")
    text.append(f"  {status}", style=style)
    if span.status_detail and span.status_detail not in ("completed", status):
        text.append(f" ({span.status_detail})", style=style)
    if span.kind != "tool_call":
        text.append(f"  tokens {span.input_tokens} in / {span.output_tokens} out")
        text.append(f"  cost {span.cost:.4g}")
    return text


def render_trace(spans: list[SpanInfo], top: str | None = None) -> Tree:
    """The span tree: under each span its children, by start time; ``top`` is the span
    to start from (default: the trace's root spans)."""
    ids = {s.span_id for s in spans}
    children: dict[str | None, list[SpanInfo]] = {}
    for s in spans:
        parent = s.parent_span_id if s.parent_span_id in ids else None
        children.setdefault(parent, []).append(s)
    sessions = sum(s.kind == "session" for s in spans)
    trace = spans[0].trace_id if spans else "-"
    tree = Tree(Text(f"trace {trace}  {sessions} sessions, {len(spans)} spans", style="bold"),
                guide_style="dim")

    def grow(branch: Tree, span: SpanInfo) -> None:
        node = branch.add(_label(span))
        for child in children.get(span.span_id, []):
            grow(node, child)

    starts = [s for s in spans if s.span_id == top] if top else children.get(None, [])
    for span in starts:
        grow(tree, span)
    return tree


def cmd_trace(args: argparse.Namespace) -> int:
    with _reader(args.db) as store:
        session = store.session(args.session_id)
        spans = [span_info(s) for s in recorder.spans(store, root_id=session.root_id)]
    if args.json:
        for span in spans:
            print(json.dumps(span.model_dump(mode="json"), sort_keys=True))
        return OK
    if not spans:
        print(f"no spans recorded for the tree of {args.session_id} (it ran before "
              "sessiontree recorded spans); its events: sessiontree events --root")
        return OK
    top = next((s.span_id for s in spans
                if s.kind == "session" and s.model_session_id == args.session_id), None)
    _console().print(render_trace(spans, top))
    return OK


# -- compact and export -----------------------------------------------------------------
def cmd_compact(args: argparse.Namespace) -> int:
    try:
        policy = RetentionPolicy(older_than_days=args.older_than, keep_last=args.keep_last)
    except ValueError as exc:
        raise InvalidInput(f"bad retention policy: {exc}") from exc
    with _reader(args.db) as store:
        owner = new_id("cli")
        try:
            lease.acquire(store, owner, LEASE_TTL)
        except StoreInUse as exc:
            raise CommandError(f"{exc}; or compact in that host with Runtime.compact") from exc
        try:
            report = compact(store, policy, dry_run=args.dry_run)
        finally:
            lease.release(store, owner)
    print(report.describe())
    for event_type, count in report.types.items():
        print(f"  {count:8d}  {event_type}")
    return OK


def cmd_export(args: argparse.Namespace) -> int:
    with _reader(args.db) as store:
        report = export_tree(store, args.session_id, args.out)
    counts = ", ".join(f"{n} {kind}s" for kind, n in report.counts.items() if kind != "header")
    print(f"exported tree {report.root_id} to {report.path}: {counts}")
    return OK


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def add_parsers(sub: Any) -> None:
    """Add ``events``, ``trace``, ``compact`` and ``export`` to the command line."""
    p = sub.add_parser("events", help="print Flight Recorder events (or the catalogue)")
    p.add_argument("--db", help="the store")
    p.add_argument("--session", help="only events of this session (model_session_id)")
    p.add_argument("--root", help="only events of the whole tree this session is in")
    p.add_argument("--type", help="only event types starting with this prefix")
    p.add_argument("--job", help="only events written by this model_run job")
    p.add_argument("--since", type=_time, help="from this time on (epoch seconds or ISO 8601)")
    p.add_argument("--until", type=_time, help="before this time (epoch seconds or ISO 8601)")
    p.add_argument("--limit", type=_non_negative_int, help="at most this many events")
    p.add_argument("--json", action="store_true",
                   help="JSON Lines: one JSON object per event, one event per line")
    p.add_argument("--follow", action="store_true", help="then print new events as they come")
    p.add_argument("--until-done", action="store_true",
                   help="with --follow: stop once the tree (or every tree) has ended")
    p.add_argument("--poll", type=_non_negative, default=FOLLOW_POLL,
                   help=f"with --follow: seconds between looks (default {FOLLOW_POLL})")
    p.add_argument("--catalog", action="store_true",
                   help="print every registered event type with its payload schema")
    p.set_defaults(func=cmd_events)

    p = sub.add_parser("trace", help="print a session tree's spans: durations, tokens, cost")
    p.add_argument("--db", required=True)
    p.add_argument("session_id", help="the root (the whole trace) or a session in it (its part)")
    p.add_argument("--json", action="store_true", help="JSON Lines: one span per line")
    p.set_defaults(func=cmd_trace)

    p = sub.add_parser("compact", help="remove old Flight Recorder events under a policy")
    p.add_argument("--db", required=True)
    policy = p.add_mutually_exclusive_group(required=True)
    policy.add_argument("--older-than", type=_non_negative, metavar="DAYS",
                        help="events of trees that all ended more than DAYS ago")
    policy.add_argument("--keep-last", type=_non_negative_int, metavar="N",
                        help="all but the last N events of each ended session")
    p.add_argument("--dry-run", action="store_true", help="count, remove nothing")
    p.set_defaults(func=cmd_compact)

    p = sub.add_parser("export", help="write a session tree to a JSON Lines file")
    p.add_argument("--db", required=True)
    p.add_argument("session_id", help="the root (or a session: its subtree)")
    p.add_argument("--out", required=True, help="the file to write (FILE.jsonl)")
    p.set_defaults(func=cmd_export)
