"""The ``sessiontree`` command line.

Commands that only read a store (``tree``, ``events``, ``trace``, ``export``,
``verify``, ``console``) open it without taking the owner lease, so they work while a
host process runs it. An operator's decision (``resolve``, ``retry``, ``revoke``,
``consent``) beside a live host is written as a command that the host applies (the
control channel, ``console.cli_control``, which also holds ``cancel``, ``pause`` and
``resume``); with no live host it takes the lease and decides at once. ``compact``
takes the lease, so beside a live host it is refused. The Flight
Recorder's commands live in ``console.observe``. Commands that run sessions (``demo``,
``recover``) open a :class:`Runtime`, which takes the lease and recovers whatever a dead
process left.

Exit codes: 0 success; 1 the work ended badly (a corrupt store for ``verify``, a root
that did not complete, a timeout); 2 the command could not run (bad arguments, no
store, store in use, an app that cannot be loaded); 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from sessiontree._errors import SessionTreeError, StoreError, StoreInUse, WaitTimeout
from sessiontree._ids import new_id
from sessiontree._runtime import LEASE_TTL, Runtime
from sessiontree._states import JobState, ToolCallState
from sessiontree._version import __version__
from sessiontree._views import SessionInfo
from sessiontree.console import cli_control, cli_security, demo, observe
from sessiontree.console._common import (
    BAD_OUTCOME,
    CANNOT_RUN,
    HOLD_STATES,
    INTERRUPTED,
    OK,
    TERMINAL,
    CommandError,
    _console,
    _err,
    _reader,
    _require_store,
    load_app,
)
from sessiontree.persistence import lease
from sessiontree.persistence.export import verify_export
from sessiontree.persistence.store import Store
from sessiontree.persistence.verify import verify_store

RUNNABLE = (JobState.QUEUED, JobState.RUNNING)


# -- demo -------------------------------------------------------------------------------
def cmd_demo(args: argparse.Namespace) -> int:
    root: SessionInfo = demo.run_root(
        args.db, args.workspace, children=args.children, latency=args.latency,
        live=not args.no_live, echo=print,
    )
    print(demo.answer_of(root))
    return OK if root.state == "completed" else BAD_OUTCOME


# -- tree -------------------------------------------------------------------------------
def cmd_tree(args: argparse.Namespace) -> int:
    from sessiontree.console.live import forest, render_tree

    with _reader(args.db) as store:
        if args.root is not None:
            store.session(args.root)  # UnknownSession for a bad id
        if args.json:
            nodes = forest(store, args.root, with_summary=True)
            print(json.dumps([node.as_json() for node in nodes], indent=2))
        else:
            _console().print(render_tree(store, args.root))
    return OK


# -- verify -----------------------------------------------------------------------------
def cmd_verify(args: argparse.Namespace) -> int:
    if args.export is not None:
        report = verify_export(args.export)
        print(report.describe())
        return OK if report.ok else BAD_OUTCOME
    with _reader(args.db) as store:
        try:
            report = verify_store(store)
        except StoreError as exc:  # a row so damaged the engine cannot read it
            print(f"CORRUPT: {exc}")
            return BAD_OUTCOME
    print(report.describe())
    return OK if report.ok else BAD_OUTCOME


# -- recover ----------------------------------------------------------------------------
def _held(store: Store, root: SessionInfo) -> list[tuple[str, str, list[str]]]:
    """Sessions of the tree that wait for a person: (id, state, open call ids)."""
    out = []
    for record in store.sessions(root_id=root.id, states=list(HOLD_STATES)):
        calls = [c.id for c in store.tool_calls(record.id, states=[ToolCallState.INTENT])]
        out.append((record.id, record.state, calls))
    return out


def _settle(rt: Runtime, root_id: str, deadline: float | None) -> tuple[SessionInfo, bool]:
    """Wait for a root to end; stop early when nothing can move without an operator.

    Returns the root and whether it is held (some session waits for a person and no job
    is queued or running). The hold is confirmed on two consecutive looks, so a tree in
    the middle of a hand-off (a child ending, its parent about to be woken) is not
    mistaken for a stuck one.
    """
    confirmations = 0
    while True:
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            raise WaitTimeout(f"root {root_id} did not finish in time")
        step = 0.5 if remaining is None else min(0.5, remaining)
        try:
            return rt.wait(root_id, timeout=step), False
        except WaitTimeout:
            pass
        root = rt.session(root_id)
        live_jobs = rt.jobs(states=RUNNABLE)  # pending ones wait for these
        if _held(rt._store, root) and not live_jobs:
            confirmations += 1
            if confirmations >= 2:
                return root, True
        else:
            confirmations = 0


def cmd_recover(args: argparse.Namespace) -> int:
    setup = load_app(args.app)
    _require_store(args.db)
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    # Which roots are unfinished is read before the runtime starts: once it runs, a
    # resumed tree may finish before we look, and must still be reported.
    with _reader(args.db) as store:
        unfinished = [s.id for s in store.sessions()
                      if s.parent_id is None and s.state not in TERMINAL]
    with Runtime.open(args.db, setup=setup) as rt:
        report = rt.recovery
        print(f"recovered {args.db}: {len(report.resumed_sessions)} sessions resumed, "
              f"{len(report.requeued_jobs)} interrupted runs re-queued, "
              f"{report.queued_jobs} runs queued")
        for sid in report.resumed_sessions:
            s = rt.session(sid)
            print(f"  resumed {s.role} {sid} (depth {s.depth})")
        for sid in report.awaiting_operator:
            print(f"  awaiting operator: {sid}")
        roots = [rt.session(sid) for sid in unfinished]
        if not roots:
            print("no unfinished root sessions")
            return OK
        if args.no_wait:
            for root in roots:
                print(f"root {root.id} ({root.role}): {root.state}")
            return OK
        code = OK
        for root in roots:
            try:
                final, held = _settle(rt, root.id, deadline)
            except WaitTimeout:
                now = rt.session(root.id)
                print(f"root {now.id} ({now.role}): still {now.state} after {args.timeout}s "
                      "(run recover again to go on)")
                code = BAD_OUTCOME
                continue
            line = f"root {final.id} ({final.role}): {final.state}"
            if final.reason and final.state != "completed":
                line += f" ({final.reason})"
            print(line)
            if held:
                for sid, state, calls in _held(rt._store, final):
                    consent = (f"; decide with: sessiontree consent grant|deny --db {args.db} "
                               f"{sid}") if state == "awaiting_consent" else ""
                    print(f"  {sid} is {state}{consent}" + "".join(
                        f"; decide with: sessiontree resolve --db {args.db} --call {c} "
                        "--done|--failed" for c in calls))
        return code


# -- resolve ----------------------------------------------------------------------------
def cmd_resolve(args: argparse.Namespace) -> int:
    from sessiontree.supervision.operator import resolve_call

    result: Any = None
    if args.result is not None:
        try:
            result = json.loads(args.result)
        except ValueError:
            result = args.result
    outcome = "done" if args.done else "failed"
    if cli_control.host_is_live(args.db):  # the host decides it (the control channel)
        return cli_control.send(args.db, "resolve", args.call,
                                args={"outcome": outcome, "result": result},
                                wait=None if args.no_wait else args.timeout)
    with _reader(args.db) as store:
        # Held for the write, like a host: a live host holds the store's rows in memory,
        # so deciding a call beside it is refused (decide it there: Runtime.resolve).
        owner = new_id("cli")
        try:
            lease.acquire(store, owner, LEASE_TTL)
        except StoreInUse as exc:
            raise CommandError(f"{exc}; or decide the call in that host with "
                               "Runtime.resolve") from exc
        try:
            session_id = resolve_call(store, args.call, outcome, result)
        finally:
            lease.release(store, owner)
    print(f"call {args.call} marked {outcome}; session {session_id} is queued again and "
          "resumes when the store is next opened (sessiontree recover, or your host)")
    return OK


# -- retry ------------------------------------------------------------------------------
def cmd_retry(args: argparse.Namespace) -> int:
    from sessiontree.supervision.operator import retry_session

    if cli_control.host_is_live(args.db):  # the host retries it (the control channel)
        return cli_control.send(args.db, "retry", args.session, note=args.note,
                                wait=None if args.no_wait else args.timeout)
    with _reader(args.db) as store:
        owner = new_id("cli")
        try:  # held for the write, as resolve is (a live host holds rows in memory)
            lease.acquire(store, owner, LEASE_TTL)
        except StoreInUse as exc:
            raise CommandError(f"{exc}; or retry it in that host with Runtime.retry") from exc
        try:
            job_id = retry_session(store, args.session, args.note)
        finally:
            lease.release(store, owner)
    print(f"session {args.session} is queued again as job {job_id}; it resumes from its "
          "latest checkpoint when the store is next opened (sessiontree recover, or your host)")
    return OK


# -- parsing ----------------------------------------------------------------------------
def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sessiontree",
        description="Run, inspect, verify and recover sessiontree stores.",
    )
    parser.add_argument("--version", action="version", version=f"sessiontree {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("demo", help="run (or resume) the research-tree example")
    p.add_argument("--db", default="demo.db", help="the store (default: demo.db)")
    p.add_argument("--workspace", help="where the scratch copy of the workspace goes (default: a temp dir)")
    p.add_argument("--no-live", action="store_true", help="no live tree view; print the final tree")
    p.add_argument("--children", type=_positive_int, default=3, help="researchers to spawn (default 3)")
    p.add_argument("--latency", type=_seconds, default=0.0, help="simulated seconds per model call")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("tree", help="print the session tree of a store")
    p.add_argument("--db", required=True)
    p.add_argument("--root", help="only this root's tree")
    p.add_argument("--json", action="store_true", help="a JSON list of root nodes")
    p.set_defaults(func=cmd_tree)

    observe.add_parsers(sub)  # events, trace, compact, export

    p = sub.add_parser("verify", help="recompute every artifact hash and message chain "
                       "(of a store, or of an export file)")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--db")
    target.add_argument("--export", metavar="FILE", help="a file written by sessiontree export")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("recover", help="resume a store left by a dead process")
    p.add_argument("--db", required=True)
    p.add_argument("--app", required=True, help="MODULE:ATTR or FILE.py:ATTR, a callable that "
                   "registers your providers and tools on the runtime")
    p.add_argument("--no-wait", action="store_true", help="report and stop; do not run to the end")
    p.add_argument("--timeout", type=_seconds, help="give up waiting after S seconds (exit 1)")
    p.set_defaults(func=cmd_recover)

    p = sub.add_parser("resolve", help="decide a side-effecting call cut off by a crash")
    p.add_argument("--db", required=True)
    p.add_argument("--call", required=True, help="the tool call id")
    decision = p.add_mutually_exclusive_group(required=True)
    decision.add_argument("--done", action="store_true", help="it happened")
    decision.add_argument("--failed", action="store_true", help="it did not happen")
    p.add_argument("--result", help="what the model sees as the call's result (JSON or text)")
    cli_control.add_wait_flags(p)
    p.set_defaults(func=cmd_resolve)
    cli_security.add_commands(sub)  # revoke, consent

    p = sub.add_parser("retry", help="retry a failed session from its latest checkpoint")
    p.add_argument("--db", required=True)
    p.add_argument("session", help="the failed session's id")
    p.add_argument("--note", help="why (kept beside the event, never as a reason)")
    cli_control.add_wait_flags(p)
    p.set_defaults(func=cmd_retry)
    cli_control.add_commands(sub)  # cancel, pause, resume, console
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; return its exit code. User errors print one line on stderr."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else CANNOT_RUN
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except CommandError as exc:
        _err(str(exc))
        return exc.code
    except SessionTreeError as exc:
        _err(str(exc))
        return CANNOT_RUN
    except BrokenPipeError:
        # The reader went away (``| head``): what it read is what it wanted. Point stdout
        # at /dev/null so the interpreter's last flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return OK
    except OSError as exc:
        _err(f"{type(exc).__name__}: {exc}")
        return CANNOT_RUN
    except KeyboardInterrupt:
        _err("interrupted; the store is consistent: run the same command again to resume")
        return INTERRUPTED


if __name__ == "__main__":
    raise SystemExit(main())
