"""``sessiontree revoke`` and ``sessiontree consent``: an operator's security decisions.

Beside a live host they are written as commands the host applies (the control channel,
``console.cli_control``). With no live host they take the store's owner lease for the
write, like a host, and what they change takes effect when the store is next opened: a
revoked token at the next gate decision, a granted consent by queueing the sessions that
waited for it.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator

from sessiontree._errors import StoreInUse
from sessiontree._ids import new_id
from sessiontree._reasons import Reason
from sessiontree._runtime import LEASE_TTL
from sessiontree.console import cli_control
from sessiontree.console._common import OK, CommandError, _reader
from sessiontree.persistence import capabilities, lease
from sessiontree.persistence.store import Store
from sessiontree.supervision import consent


@contextlib.contextmanager
def _owned(db: str, hint: str) -> Iterator[Store]:
    with _reader(db) as store:
        owner = new_id("cli")
        try:
            lease.acquire(store, owner, LEASE_TTL)
        except StoreInUse as exc:
            raise CommandError(f"{exc}; or do it in that host with {hint}") from exc
        try:
            yield store
        finally:
            lease.release(store, owner)


def _wait(args: argparse.Namespace) -> float | None:
    return None if args.no_wait else float(args.timeout)


def cmd_revoke(args: argparse.Namespace) -> int:
    if cli_control.host_is_live(args.db):
        return cli_control.send(args.db, "revoke", args.token, args={"reason": args.reason},
                                wait=_wait(args))
    with _owned(args.db, "Runtime.revoke") as store, store.transaction() as tx:
        revoked = capabilities.revoke(tx, args.token, args.reason)
    for token in revoked:
        print(f"revoked {token.id} ({token.capability}) of session {token.session_id}")
    if not revoked:
        print(f"token {args.token} was already revoked")
    return OK


def cmd_consent(args: argparse.Namespace) -> int:
    if cli_control.host_is_live(args.db):
        return cli_control.send(args.db, "consent", args.session,
                                args={"decision": args.decision, "provider": args.provider},
                                wait=_wait(args))
    with _owned(args.db, "Runtime.grant_consent / deny_consent") as store:
        session = store.session(args.session)  # UnknownSession for a bad id
        provider = args.provider or session.provider
        with store.transaction() as tx:
            if args.decision == "grant":
                moved = consent.grant(tx, session.root_id, provider, "operator")
                what = "queued again"
            elif args.decision == "deny":
                moved = consent.deny(tx, session.root_id, provider, "operator")
                what = "failed (consent_denied)"
            else:
                consent.revoke(tx, session.root_id, provider, "operator")
                moved, what = [], ""
    print(f"consent {args.decision} for {provider} in tree {session.root_id}")
    for sid in moved:
        print(f"  session {sid} {what}")
    return OK


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``revoke`` and ``consent`` to the command line's subcommands."""
    p = sub.add_parser("revoke", help="revoke a capability token and every token derived from it")
    p.add_argument("--db", required=True)
    p.add_argument("token", help="the token id (tok_...)")
    p.add_argument("--reason", default=Reason.REVOKED_BY_OPERATOR.value)
    cli_control.add_wait_flags(p)
    p.set_defaults(func=cmd_revoke)

    p = sub.add_parser("consent", help="grant, deny or revoke consent for a cloud provider")
    p.add_argument("decision", choices=["grant", "deny", "revoke"])
    p.add_argument("--db", required=True)
    p.add_argument("session", help="a session of the tree (its root's tree is decided)")
    p.add_argument("--provider", help="the provider (default: the session's)")
    cli_control.add_wait_flags(p)
    p.set_defaults(func=cmd_consent)
