"""``sessiontree cancel|pause|resume`` and ``console``: steering a tree from another
terminal, through the store's control channel (``persistence.commands``).

A command is written to the store; the command line then rings the host's doorbell
(``persistence.doorbell``), the host applies it at once (after the commands before it)
and answers when it is settled, and the command line prints the outcome
(``--timeout``, default 10 s; ``--no-wait`` returns once it is written). A host with no
doorbell still applies it within ``persistence.commands.POLL_INTERVAL``; the command
line then says so and does not wait. With no live host it stays pending and the next host that
opens the store applies it first. ``retry``, ``resolve``, ``revoke`` and ``consent``
take the same path when a host is live (with none, they decide at once: ``console.cli``).

Exit codes: 0 applied (or written, with no host or ``--no-wait``); 1 refused by the host,
or not applied within the timeout; 2 the command could not be written (no store, an
unknown session, one that has ended).
"""

from __future__ import annotations

import argparse
from typing import Any

from sessiontree._runtime import LEASE_TTL
from sessiontree._states import SessionState
from sessiontree.console._common import BAD_OUTCOME, OK, CommandError, _reader
from sessiontree.persistence import commands, doorbell, lease
from sessiontree.persistence.store import Store

WAIT = 10.0
"""Seconds the command line waits for a live host to settle a command by default."""


def host_is_live(db: str) -> bool:
    """True if a live process holds the store (its commands go through the channel)."""
    with _reader(db) as store:
        return lease.holder(store, LEASE_TTL) is not None


def _check_target(store: Store, kind: str, target: str) -> None:
    if kind in ("resolve", "revoke"):
        return  # a call or a token: the host says if it knows it
    session = store.session(target)  # UnknownSession: exit 2 with its message
    if SessionState(session.state).terminal and not (kind == "retry" and session.state == "failed"):
        raise CommandError(f"session {target} has ended ({session.state}); nothing to {kind}")


def send(db: str, kind: str, target: str, *, subtree: bool = False,
         args: dict[str, Any] | None = None, note: str | None = None,
         wait: float | None = WAIT) -> int:
    """Write one command and (``wait`` seconds at most; None: not at all) wait for a live
    host to settle it; print what happened; return the exit code."""
    with _reader(db) as store:
        _check_target(store, kind, target)
        cmd = commands.write(store, kind, target, subtree=subtree, args=args, by="operator",
                             note=note)
        what = f"{kind}{' --subtree' if subtree else ''} {target}"
        holder = lease.holder(store, LEASE_TTL)
        if holder is None:
            print(f"command {cmd.id} ({what}) written; no host holds {db}: the next one to "
                  "open it applies it first")
            return OK
        if wait is None:
            print(f"command {cmd.id} ({what}) written; host pid {holder.pid} applies it")
            return OK
        rung = doorbell.ring(db, cmd.id, wait)  # the host answers once it is settled
        if rung is None:
            print(f"command {cmd.id} ({what}) written; host pid {holder.pid} applies it "
                  "(it has no doorbell to answer on: see `sessiontree events --db "
                  f"{db} --type FR-EVT-SESS-CONTROL`)")
            return OK
        now = commands.get(store, cmd.id)
        if now.state != "pending":
            delay = (now.settled_at or now.created_at) - now.created_at
            print(f"{now.state}: {what}: {now.outcome} ({delay * 1000:.0f} ms)")
            return OK if now.state == "applied" else BAD_OUTCOME
        print(f"command {cmd.id} ({what}) not applied after {wait:g}s; it stays pending "
              f"(see `sessiontree events --db {db} --type FR-EVT-SESS-CONTROL`)")
        return BAD_OUTCOME


def _wait_of(args: argparse.Namespace) -> float | None:
    return None if args.no_wait else args.timeout


def cmd_control(args: argparse.Namespace) -> int:
    return send(args.db, args.command, args.session, subtree=args.subtree, note=args.note,
                wait=_wait_of(args))


def cmd_console(args: argparse.Namespace) -> int:
    from sessiontree.console.app import run_console

    return run_console(args.db, refresh=args.refresh)


def _waits(p: argparse.ArgumentParser) -> None:
    p.add_argument("--timeout", type=float, default=WAIT,
                   help=f"seconds to wait for a live host's answer (default {WAIT:g})")
    p.add_argument("--no-wait", action="store_true", help="return once the command is written")


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``cancel``, ``pause``, ``resume`` and ``console`` to the subcommands."""
    helps = {"cancel": "cancel a session (and so its subtree)",
             "pause": "pause a session: nothing new is dispatched for it",
             "resume": "resume a paused session"}
    for kind, text in helps.items():
        p = sub.add_parser(kind, help=f"{text}, in the host that holds the store")
        p.add_argument("--db", required=True)
        p.add_argument("session", help="the session's id")
        p.add_argument("--subtree", action="store_true",
                       help="also every live descendant" + (" (a cancel always ends them)"
                                                             if kind == "cancel" else ""))
        p.add_argument("--note", help="why (kept with the command and its events)")
        _waits(p)
        p.set_defaults(func=cmd_control)

    p = sub.add_parser("console", help="the interactive steering console (needs the "
                       "'console' extra); piped, one snapshot")
    p.add_argument("--db", required=True)
    p.add_argument("--refresh", type=float, default=0.5, help="seconds between looks (default 0.5)")
    p.set_defaults(func=cmd_console)


def add_wait_flags(p: argparse.ArgumentParser) -> None:
    """``--timeout``/``--no-wait`` for the verbs that go through the channel beside a host."""
    _waits(p)
