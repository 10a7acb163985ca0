"""The runtime's reads: typed, public views of what the store holds.

:class:`~sessiontree._runtime.Runtime` inherits them. They read the store (through its
row cache where it has one) and never the scheduler, so they are safe from any thread
and cheap enough to poll; nothing here writes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import Any

from sessiontree._checks import check_id, check_timeout
from sessiontree._errors import InvalidInput, RuntimeClosed, WaitTimeout
from sessiontree._states import JobState, SessionState, ToolCallState
from sessiontree._views import (
    JobInfo,
    MailboxPost,
    MessageInfo,
    SessionInfo,
    SessionNode,
    ToolCallInfo,
    build_forest,
    info,
    job_info,
    mailbox_post,
    message_info,
    tool_call_info,
)
from sessiontree.persistence.store import Store


class RuntimeReads:
    """Reads of sessions, trees, histories, jobs, the journal, mailboxes and events, and
    the waits that block until a session reaches a state."""

    _store: Store
    _changed: threading.Condition  # notified on every committed state change
    _generation: int  # bumped with each notification
    _closed: bool

    def _check_open(self) -> None:
        """Raise if the runtime can no longer serve a call (the runtime overrides it)."""

    def wait(self, session_id: str, timeout: float | None = None) -> SessionInfo:
        """Block until the session has ended, or answered and waits ``idle`` (a
        conversational session: its ``summary`` is the answer); return it. Raises
        :class:`WaitTimeout`
        (``timeout`` seconds, a number >= 0, or None for no limit), and the runtime's
        own failures (:class:`SchedulerDied`, :class:`StoreLost`) as soon as they occur."""
        self._check_open()
        check_timeout("timeout", timeout)
        self._store.session(check_id("session_id", session_id))
        return self._wait_for(lambda: self._settled(session_id), session_id, timeout)

    def _settled(self, session_id: str) -> SessionInfo | None:
        s = self.session(session_id)
        return s if s.terminal or s.state == SessionState.IDLE else None

    def _wait_for(
        self, check: Callable[[], SessionInfo | None], what: str, timeout: float | None
    ) -> SessionInfo:

        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._changed:
                seen = self._generation
            # Read the store without holding the condition: committing threads notify
            # it, and must never queue behind a waiter's read.
            found = check()
            if found is not None:
                return found
            with self._changed:
                while self._generation == seen:
                    if self._closed:
                        raise RuntimeClosed("runtime closed while waiting")
                    self._check_open()
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        raise WaitTimeout(f"{what} did not finish within {timeout}s")
                    self._changed.wait(remaining if remaining is not None else 1.0)

    def wait_state(
        self, session_id: str, state: SessionState | str, timeout: float | None = None
    ) -> SessionInfo:
        """Block until the session is in ``state`` (or has ended); return it. Raises
        :class:`WaitTimeout`, :class:`InvalidInput` for an unknown state name."""
        self._check_open()
        check_timeout("timeout", timeout)
        self._store.session(check_id("session_id", session_id))
        try:
            state = SessionState(state)
        except ValueError:
            raise InvalidInput(f"unknown session state {state!r}") from None

        def check() -> SessionInfo | None:
            s = self.session(session_id)
            return s if s.state == state or s.terminal else None

        return self._wait_for(check, session_id, timeout)

    def session(self, session_id: str) -> SessionInfo:
        """The session as it is now. Raises :class:`UnknownSession`."""
        self._check_open()
        return info(self._store, self._store.session(check_id("session_id", session_id)))

    def tree(self, root_id: str | None = None) -> list[SessionNode]:
        """The session forest (or the tree that holds ``root_id``), children in spawn
        order, each node with its summary once it completed."""
        self._check_open()
        if root_id is not None:
            root = self._store.session(check_id("root_id", root_id))
            return build_forest(self._store, self._store.sessions(root_id=root.root_id))
        return build_forest(self._store, self._store.sessions())

    def sessions(
        self, *, root_id: str | None = None, states: Iterable[SessionState | str] | None = None
    ) -> list[SessionInfo]:
        """Sessions, oldest first: every one, or one tree's (``root_id``), optionally only
        those in ``states``. Summaries are not read (use :meth:`session` or :meth:`tree`)."""
        if root_id is not None:
            root_id = self._store.session(root_id).root_id
        return [info(self._store, r, with_summary=False) for r in self._store.sessions(
            root_id=root_id, states=_states(SessionState, states, "session states"))]

    def children(self, session_id: str) -> list[SessionInfo]:
        """The session's children, in spawn order. Raises :class:`UnknownSession`."""
        self._check_open()
        self._store.session(check_id("session_id", session_id))
        return [info(self._store, r) for r in self._store.children(session_id)]

    def messages(self, session_id: str) -> list[MessageInfo]:
        """The session's history in order. Raises :class:`UnknownSession`."""
        self._check_open()
        self._store.session(check_id("session_id", session_id))
        return [message_info(m) for m in self._store.messages(session_id)]

    def jobs(
        self, session_id: str | None = None, *, states: Iterable[JobState | str] | None = None
    ) -> list[JobInfo]:
        """model_run jobs in enqueue order: one session's (or all), optionally only
        those in ``states``."""
        self._check_open()
        if session_id is not None:
            self._store.session(check_id("session_id", session_id))
        return [job_info(j) for j in self._store.jobs(
            session_id=session_id, states=_states(JobState, states, "job states"))]

    def tool_calls(
        self, session_id: str | None = None, *,
        states: Iterable[ToolCallState | str] | None = None,
    ) -> list[ToolCallInfo]:
        """The tool-call journal: one session's calls (or all), in the order the model
        asked for them, optionally only those in ``states``."""
        self._check_open()
        if session_id is not None:
            self._store.session(check_id("session_id", session_id))
        return [tool_call_info(c) for c in self._store.tool_calls(
            session_id, states=_states(ToolCallState, states, "tool-call states"))]

    def mailbox(self, session_id: str) -> list[MailboxPost]:
        """What was posted to the session's persisted mailbox (announce-backs)."""
        self._check_open()
        self._store.session(check_id("session_id", session_id))
        return [mailbox_post(p) for p in self._store.mailbox(session_id)]


def _states(enum: type[StrEnum], states: Iterable[Any] | None, what: str) -> list[str] | None:
    if states is None:
        return None
    if isinstance(states, str):
        states = [states]
    try:
        return [enum(s).value for s in states]
    except ValueError as exc:
        raise InvalidInput(f"unknown {what}: {exc}") from None
