"""One exception root, a few meaningful subclasses, each carrying structured facts.

Every public entry point raises a subclass of :class:`SessionTreeError`; a program can
switch on ``reason`` (a :class:`~sessiontree._reasons.Reason`) instead of parsing text,
and read the facts (ids, paths, numbers) from typed attributes and ``facts``::

    SessionTreeError                  reason, facts
    ├── InvalidInput (ValueError)     a host's argument is malformed or out of range
    ├── UnknownSession (KeyError)     session_id
    ├── IllegalTransition             kind, subject_id, from_state, to_state
    ├── WaitTimeout (TimeoutError)    a wait ended before the session did
    ├── RuntimeClosed                 the runtime was closed
    ├── StoreError                    path (when known); the store refused a read/write
    │   ├── SchemaVersionError        found, supported
    │   ├── StoreInUse                another live process holds the store
    │   └── CorruptStore              a row fails its integrity check
    ├── ProviderError                 a provider call failed (providers.base)
    └── ToolError                     a tool's error result for the model (tools.registry)

Not errors: :class:`~sessiontree._cancellation.Cancelled` is a ``BaseException`` (like
trio's), so that no ``except Exception`` on the way swallows a cancellation.
"""

from __future__ import annotations

from typing import Any

from sessiontree._reasons import Reason


class SessionTreeError(Exception):
    """Root of every error sessiontree raises on purpose."""

    reason: Reason | None = None

    def __init__(self, message: str, *, reason: Reason | None = None, **facts: Any) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason
        self.facts: dict[str, Any] = facts


class InvalidInput(SessionTreeError, ValueError):
    """An argument given to a public entry point is malformed or out of range."""

    reason = Reason.INVALID_INPUT


class UnknownSession(SessionTreeError, KeyError):
    """No session with that id exists in the store."""

    reason = Reason.UNKNOWN_SESSION

    def __init__(self, session_id: str) -> None:
        super().__init__(f"unknown session id: {session_id!r}", session_id=session_id)
        self.session_id = session_id

    def __str__(self) -> str:  # KeyError would quote the message again
        return str(self.args[0])


class IllegalTransition(SessionTreeError):
    """A state change that its state machine (session, job or tool call) does not allow."""

    reason = Reason.ILLEGAL_TRANSITION

    def __init__(
        self, subject_id: str, from_state: str, to_state: str, *, kind: str = "session"
    ) -> None:
        super().__init__(
            f"{kind} {subject_id}: illegal transition {from_state} -> {to_state}",
            subject_id=subject_id,
            from_state=from_state,
            to_state=to_state,
            kind=kind,
        )
        self.subject_id = subject_id
        self.kind = kind  # "session", "job" or "tool_call"
        self.from_state = from_state
        self.to_state = to_state

    @property
    def session_id(self) -> str | None:
        """The session's id when ``kind == "session"``."""
        return self.subject_id if self.kind == "session" else None


class WorkspaceError(SessionTreeError):
    """A workspace operation was refused or failed: a path outside the root, a missing
    file, a git failure. ``reason`` says which (``path_refused``, ``workspace_error``,
    ``workspace_unavailable``). A workspace tool hands it to the model as an error
    result; the host meets it when binding a workspace."""

    reason = Reason.WORKSPACE_ERROR


class WorkspaceConflict(WorkspaceError):
    """Another session holds the path, or a merge conflicts; decided at once, never
    waited for.

    ``kind`` is ``"lease"`` (``path`` is leased by ``holder_session_id``, whose role is
    ``holder_role``, in ``lease_mode``) or ``"merge"`` (``paths`` conflict when merging
    ``child_id``'s branch).
    """

    reason = Reason.WORKSPACE_CONFLICT

    def __init__(self, message: str, *, kind: str, path: str | None = None,
                 paths: tuple[str, ...] = (), holder_session_id: str | None = None,
                 holder_role: str | None = None, lease_mode: str | None = None,
                 **facts: Any) -> None:
        super().__init__(message, kind=kind, path=path, paths=list(paths),
                         holder_session_id=holder_session_id, holder_role=holder_role,
                         lease_mode=lease_mode, **facts)
        self.kind = kind
        self.path = path
        self.paths = paths
        self.holder_session_id = holder_session_id
        self.holder_role = holder_role
        self.lease_mode = lease_mode


class StoreError(SessionTreeError):
    """The store could not be read or written (full disk, locked, corrupt, ...)."""

    reason = Reason.STORE_ERROR


class SchemaVersionError(StoreError):
    """The store was written by a newer (or unknown) schema version."""

    reason = Reason.SCHEMA_VERSION


class StoreInUse(StoreError):
    """Another live process holds the store's owner lease."""

    reason = Reason.STORE_IN_USE


class CorruptStore(StoreError):
    """A stored row fails its integrity check (hash or chain mismatch, bad JSON)."""

    reason = Reason.CORRUPT_STORE


class RuntimeClosed(SessionTreeError):
    """The runtime was closed; no more work is accepted."""

    reason = Reason.RUNTIME_CLOSED


class WaitTimeout(SessionTreeError, TimeoutError):
    """A wait for a session ended before the session did."""

    reason = Reason.TIMEOUT


class SchedulerDied(SessionTreeError):
    """The runtime's SchedulerActor is no longer running (something outside sessiontree
    stopped it, e.g. another library's pykka actor dying of a ``BaseException``, which
    makes pykka stop every actor in the process). Every later call on that runtime but
    ``close()`` raises this; close it and ``Runtime.open`` the same store: recovery
    resumes whatever was in flight."""

    reason = Reason.SCHEDULER_DIED


class StoreLost(StoreError):
    """The store file this runtime opened is no longer at its path (deleted, or moved
    away). Found by the lease heartbeat; every later call on that runtime but
    ``close()`` raises this. Facts: ``path``; ``expected`` and ``found`` file
    identities (``st_dev:st_ino``)."""

    reason = Reason.STORE_LOST


class StoreReplaced(StoreLost):
    """Another file now sits at the store's path: the runtime's own file was replaced."""

    reason = Reason.STORE_REPLACED
