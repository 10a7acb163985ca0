"""One exception root, a few meaningful subclasses, each carrying structured facts.

Every public entry point raises a subclass of :class:`SessionTreeError`; a program can
switch on ``reason`` (a :class:`~sessiontree.reasons.Reason`) instead of parsing text.
"""

from __future__ import annotations

from typing import Any

from sessiontree.reasons import Reason


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
    """A session state change that the state machine does not allow."""

    reason = Reason.ILLEGAL_TRANSITION

    def __init__(self, session_id: str, from_state: str, to_state: str) -> None:
        super().__init__(
            f"session {session_id}: illegal transition {from_state} -> {to_state}",
            session_id=session_id,
            from_state=from_state,
            to_state=to_state,
        )
        self.session_id = session_id
        self.from_state = from_state
        self.to_state = to_state


class LimitExceeded(SessionTreeError):
    """A limit or budget would be exceeded."""


class SpawnRejected(SessionTreeError):
    """The scheduler refused a spawn request; ``reason`` says why."""

    def __init__(self, message: str, *, reason: Reason, **facts: Any) -> None:
        super().__init__(message, reason=reason, **facts)


class CapabilityDenied(SessionTreeError):
    """The Tool Gate refused a tool call."""

    reason = Reason.CAPABILITY_DENIED


class WorkspaceConflict(SessionTreeError):
    """A workspace path is held by another session."""

    reason = Reason.WORKSPACE_CONFLICT


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


class RecoveryError(SessionTreeError):
    """Recovery of a store left by a dead process could not proceed."""

    reason = Reason.RECOVERY_ERROR


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
