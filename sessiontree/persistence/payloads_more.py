"""Payload schemas of the scheduler's and spawn's events (``FR-EVT-SESS-SCHED-*``,
``FR-EVT-SESS-SPAWN-*``) and of capabilities, consent and workspaces; the registry that
names them is ``persistence.events``."""

from __future__ import annotations

from typing import Any

from sessiontree.persistence.payloads import _Payload


class CapabilityIssued(_Payload):
    """Capability tokens were issued to a session (a root's by the host, a child's
    derived from its parent's)."""

    tokens: list[dict[str, Any]]


class CapabilityRevoked(_Payload):
    """A capability token was revoked (and, by cascade, every token derived from it)."""

    token_id: str
    capability: str
    reason: str
    cascade_from: str | None = None


class CapabilityExpired(_Payload):
    """A capability token expired; the gate denied the call that needed it."""

    token_id: str
    capability: str
    expires_at: float
    call_id: str  # the call the gate denied because of it


class ConsentRequested(_Payload):
    """The session waits for consent to send its data to a cloud provider."""

    provider: str
    root_id: str


class ConsentDecided(_Payload):
    """Consent for a cloud provider in this session tree was granted, denied or revoked."""

    provider: str
    root_id: str
    by: str


class SchedEnqueued(_Payload):
    """A model_run job was queued for the session (not before ``not_before``)."""

    attempt: int
    provider: str
    not_before: float | None = None
    pending: bool = False  # a message for a busy session: it waits its turn


class SchedDispatched(_Payload):
    """The scheduler started the job, with the budget it reserved for it."""

    attempt: int
    provider: str
    reservation: dict[str, Any]


class SchedCompleted(_Payload):
    """The job ended: the model answered, or its tool calls are done (``outcome``)."""

    attempt: int
    outcome: str


class SchedFailed(_Payload):
    """The job failed (budget, restart intensity, an unknown side effect, ...)."""

    attempt: int
    reason: str
    error: str | None = None


class SchedCancelled(_Payload):
    """The job was cancelled because its session ended; ``was_running`` if it ran."""

    attempt: int
    reason: str
    was_running: bool
    note: str | None = None  # the host's free text beside the reason (cancel_job)


class SchedRetried(_Payload):
    """The job was queued again with ``attempt`` (a restart or a recovery)."""

    attempt: int
    delay: float
    reason: str


class SchedThrottled(_Payload):
    """A queued job could not be dispatched yet: ``limit`` says which limit held it."""

    limit: str


class SchedCooldown(_Payload):
    """A retryable provider failure: the provider cools down, its concurrency shrinks."""

    provider: str
    reason: str
    status: int | None
    retry_after: float | None
    delay: float
    until: float
    concurrency: int
    run_failures: int


class SpawnRequested(_Payload):
    """A session asked for a child (through ``spawn_session``)."""

    parent_id: str
    role: str
    depth: int
    budget: dict[str, Any] | None
    call_id: str | None = None


class SpawnAccepted(_Payload):
    """The scheduler accepted a spawn: the child, its depth, its carved budget."""

    parent_id: str
    child_id: str
    depth: int
    budget: dict[str, Any]
    granted: list[str] = []
    dropped: list[str] = []  # asked for, not held by the parent: refused


class SpawnRejected(_Payload):
    """The scheduler rejected a spawn, with its reason code."""

    parent_id: str
    reason: str
    detail: str


class SpawnAnnounced(_Payload):
    """A child that ended announced back to its parent's mailbox."""

    parent_id: str
    child_id: str
    status: str
    reason: str | None
    summary_hash: str | None
    usage: dict[str, Any]


class WorkspaceBound(_Payload):
    """A workspace directory was bound to the session, in its mode."""

    mode: str
    path: str
    owner_id: str
    branch: str | None = None
    repo: str | None = None


class WorkspaceLeased(_Payload):
    """The session took path leases (read or write) in its workspace."""

    workspace: str
    patterns: list[str]
    mode: str
    expires_at: float | None = None


class WorkspaceReleased(_Payload):
    """The session's path leases were freed (it ended, or its host changed)."""

    reason: str
    patterns: list[str]


class WorkspaceConflict(_Payload):
    """A write to a workspace path leased by another session was refused."""

    kind: str  # lease | merge
    paths: list[str]
    requested_mode: str | None = None
    holder_session_id: str | None = None
    holder_role: str | None = None
    lease_mode: str | None = None
    lease_pattern: str | None = None
    child_id: str | None = None
    branch: str | None = None


class WorkspaceWorktree(_Payload):
    """A session's git worktree was created or removed."""

    action: str  # created | removed
    path: str
    branch: str
    commit: str | None = None


class WorkspaceMerged(_Payload):
    """A child's worktree branch was merged into its parent's."""

    child_id: str
    branch: str
    commit: str
    paths: list[str]
    resolved: list[str] = []
