"""Steering a running tree: :meth:`Runtime.pause` / :meth:`Runtime.resume` and the
control channel's host side.

Commands written to the store by other processes (``persistence.commands``) are applied
here, in the order written, through the same :class:`Runtime` methods a host calls:
``cancel``, ``pause``, ``resume`` (each optionally for the subtree), ``retry``,
``resolve``, ``consent`` (grant, deny, revoke) and ``revoke`` (a capability token).
Each is settled ``applied`` or ``refused`` with an outcome text, and recorded as an
``FR-EVT-SESS-CONTROL-APPLIED`` / ``-REFUSED`` event (``delay``: seconds from written to
settled). A command for an unknown session, or for one that has ended (but ``retry``,
whose target has failed), is refused.

Threads: the command watch (``persistence.commands.CommandWatch``, thread
``sessiontree-commands``) calls :meth:`RuntimeControl.apply_commands` when another
process committed; it acts as a host thread (it calls Runtime methods, and asks the
scheduler). ``Runtime.open`` applies what is pending once, before the watch starts.

Guarantees: a command row is applied at most once by a host that stays up; the host
applies it, then settles it, so a host that dies between the two applies it again at
the next open. Every command is idempotent in effect (a second pause, resume or cancel
changes nothing; a second ``retry`` is refused because the session is no longer failed).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from sessiontree._errors import InvalidInput, SessionTreeError
from sessiontree._reasons import Reason
from sessiontree._states import SessionState
from sessiontree.actors.context import RuntimeContext
from sessiontree.persistence import commands, steering
from sessiontree.persistence.commands import Command, CommandWatch
from sessiontree.persistence.doorbell import Doorbell
from sessiontree.persistence.store import Store
from sessiontree.supervision import consent
from sessiontree.supervision import scheduler as sch
from sessiontree.supervision.pause import Pause, Resume

log = logging.getLogger(__name__)

_ON_SESSIONS = ("cancel", "pause", "resume", "retry", "consent")


class RuntimeControl:
    """Pause and resume, and the commands other processes write (module docstring)."""

    _store: Store
    _ctx: RuntimeContext
    _watch: CommandWatch | None = None
    _doorbell: Doorbell | None = None
    _commands_lock: threading.Lock

    def _check_open(self) -> None:  # pragma: no cover - Runtime's
        raise NotImplementedError

    def _ask(self, message: object) -> Any:  # pragma: no cover - Runtime's
        raise NotImplementedError

    def retry(self, session_id: str, note: str | None = None) -> str:  # pragma: no cover
        raise NotImplementedError

    def resolve(self, call_id: str, outcome: str, result: Any = None) -> None:  # pragma: no cover
        raise NotImplementedError

    def revoke(self, token_id: str,
               reason: str = Reason.REVOKED_BY_HOST.value) -> list[str]:  # pragma: no cover
        raise NotImplementedError

    # -- pause and resume -------------------------------------------------------------
    def pause(self, session_id: str, *, subtree: bool = False, note: str | None = None,
              by: str = "host") -> list[str]:
        """Pause a session (with ``subtree=True``, it and every live descendant): nothing
        new is dispatched for it. A queued one moves to ``paused`` now; a running one
        finishes its current step first (meanwhile its spawns are rejected with reason
        ``paused``); one waiting for children or idle stays so, marked paused, until its
        next run would start (see ``supervision.pause``). Returns the ids newly paused
        (none if they all were already: pausing twice is harmless). Raises
        :class:`UnknownSession`, :class:`IllegalTransition` for a session that ended."""
        self._check_open()
        _check_args(session_id, note, by)
        paused: list[str] = self._ask(Pause(session_id, bool(subtree), by, note))
        return paused

    def resume(self, session_id: str, *, subtree: bool = False, note: str | None = None,
               by: str = "host") -> list[str]:
        """Resume a paused session (``subtree=True``: and its paused descendants): a
        ``paused`` one is queued again, FIFO within its tree, its tree keeping its
        round-robin turn. Returns the ids resumed (none if none was paused). Raises
        :class:`UnknownSession`, :class:`IllegalTransition` for a session that ended."""
        self._check_open()
        _check_args(session_id, note, by)
        resumed: list[str] = self._ask(Resume(session_id, bool(subtree), by, note))
        return resumed

    def paused_sessions(self) -> list[str]:
        """The sessions paused now (in state ``paused`` or marked to enter it)."""
        self._check_open()
        return sorted(commands.paused_ids(self._store))

    # -- the control channel ----------------------------------------------------------
    def _start_commands(self) -> None:
        self._commands_lock = threading.Lock()
        with self._store.transaction() as tx:  # what a console shows usage against
            steering.publish_limits(tx, {
                "max_concurrent_runs": self._ctx.limits.max_concurrent_runs,
                "pid": os.getpid()})
        self.apply_commands()  # written while no host ran
        self._watch = CommandWatch(self._store, self.apply_commands)
        self._watch.start()
        if self._store.path != ":memory:":  # a writer elsewhere rings instead of polling
            bell = Doorbell(self._store.path, self._watch.poke, self._is_settled)
            self._doorbell = bell if bell.start() else None

    def _stop_commands(self) -> None:
        if self._doorbell is not None:
            self._doorbell.stop()
        if self._watch is not None:
            self._watch.stop()

    def _is_settled(self, command_id: str) -> bool:
        try:
            return commands.get(self._store, command_id).state != "pending"
        except SessionTreeError:
            return True  # no such command: nothing will settle it

    def apply_commands(self) -> list[Command]:
        """Apply every pending command now, in the order written; return them settled.
        The command watch calls this; a host may too (it is safe on any thread)."""
        with self._commands_lock:
            done = []
            for cmd in commands.pending(self._store):
                state, outcome = self._perform(cmd)
                self._settle(cmd, state, outcome)
                done.append(commands.get(self._store, cmd.id))
            return done

    def _perform(self, cmd: Command) -> tuple[str, str]:
        try:
            if cmd.kind in _ON_SESSIONS:
                session = self._store.session(cmd.target)  # UnknownSession
                ended = SessionState(session.state).terminal
                if ended and not (cmd.kind == "retry" and session.state == "failed"):
                    return "refused", f"session {cmd.target} has ended ({session.state})"
            return "applied", self._do(cmd)
        except SessionTreeError as exc:
            return "refused", str(exc)

    def _do(self, cmd: Command) -> str:
        kind, target, args = cmd.kind, cmd.target, cmd.args
        if kind == "cancel":  # as Runtime.cancel, but the reason says an operator did it
            self._check_open()
            self._ask(sch.Cancel(target, Reason.CANCELLED_BY_OPERATOR, cmd.note))
            return f"cancelled {target} and its subtree"
        if kind in ("pause", "resume"):
            verb = self.pause if kind == "pause" else self.resume
            ids = verb(target, subtree=cmd.subtree, note=cmd.note, by=cmd.by)
            if not ids:
                return f"nothing to {kind}: already {'paused' if kind == 'pause' else 'running'}"
            return f"{kind}d {len(ids)} session{'s' if len(ids) != 1 else ''}: {' '.join(ids)}"
        if kind == "retry":
            return f"queued again as job {self.retry(target, cmd.note)}"
        if kind == "resolve":
            outcome = args.get("outcome")
            if outcome not in ("done", "failed"):
                raise InvalidInput("resolve needs outcome done or failed")
            self.resolve(target, outcome, args.get("result"))
            return f"call {target} marked {outcome}"
        if kind == "consent":
            return self._consent(target, args)
        if kind == "revoke":
            reason = args.get("reason") or Reason.REVOKED_BY_OPERATOR.value
            ids = self.revoke(target, reason)
            return f"revoked {len(ids)} token{'s' if len(ids) != 1 else ''}" if ids else (
                f"token {target} was already revoked")
        raise InvalidInput(f"unknown command {kind!r}")  # pragma: no cover - write() checks

    def _consent(self, session_id: str, args: dict[str, Any]) -> str:
        self._check_open()
        session = self._store.session(session_id)
        provider = args.get("provider") or session.provider
        decision = args.get("decision")
        with self._store.transaction() as tx:
            if decision == "grant":
                moved = consent.grant(tx, session.root_id, provider, "operator")
            elif decision == "deny":
                moved = consent.deny(tx, session.root_id, provider, "operator")
            elif decision == "revoke":
                consent.revoke(tx, session.root_id, provider, "operator")
                moved = []
            else:
                raise InvalidInput("consent needs a decision: grant, deny or revoke")
        return f"consent {decision} for {provider} in tree {session.root_id}" + (
            f"; sessions moved: {' '.join(moved)}" if moved else "")

    def _settle(self, cmd: Command, state: str, outcome: str) -> None:
        subject = None
        if cmd.kind in _ON_SESSIONS:
            try:
                subject = self._store.session(cmd.target).id
            except SessionTreeError:
                subject = None
        kind = "APPLIED" if state == "applied" else "REFUSED"
        try:
            with self._store.transaction() as tx:
                if commands.settle(tx, cmd.id, state, outcome):
                    tx.event(f"FR-EVT-SESS-CONTROL-{kind}", subject, None, {
                        "command_id": cmd.id, "kind": cmd.kind, "target": cmd.target,
                        "subtree": cmd.subtree, "by": cmd.by, "outcome": outcome,
                        "delay": max(0.0, time.time() - cmd.created_at)})
        except SessionTreeError:
            log.exception("could not settle command %s", cmd.id)
        if self._doorbell is not None:
            self._doorbell.settled(cmd.id)
        (log.info if state == "applied" else log.warning)(
            "command %s %s %s: %s: %s", cmd.id, cmd.kind, cmd.target, state, outcome)


def _check_args(session_id: str, note: str | None, by: str) -> None:
    if not isinstance(session_id, str) or not session_id:
        raise InvalidInput("session_id must be a non-empty str")
    if note is not None and not isinstance(note, str):
        raise InvalidInput("note must be a str")
    if not isinstance(by, str) or not by:
        raise InvalidInput("by must be a non-empty str")
