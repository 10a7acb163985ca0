"""The workspace tables' verbs: session bindings and path leases.

The decisions (which binding a child gets, whether a lease conflicts) are made in
``sessiontree.workspace``; this module only reads and writes the rows, inside the
caller's transaction, with the Flight Recorder events that go with them.

A path lease belongs to the store owner (the host process) that took it: it is live
only while that owner holds the store's lease. When another process takes the store
over (after a crash: ``persistence.lease.acquire``) every lease of the old owner is
freed in the same transaction; and a session's leases are freed in the transaction
that ends it (``actors.ending``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sessiontree.persistence.store import Store
    from sessiontree.persistence.tx import Tx


@dataclass(frozen=True)
class WorkspaceBinding:
    session_id: str
    mode: str  # locked | worktree
    path: str  # the directory the session's file tools see
    owner_id: str  # the session whose directory it is
    repo: str | None = None
    common_dir: str | None = None
    git_dir: str | None = None
    branch: str | None = None
    start: str | None = None
    base: str | None = None
    state: str = "active"  # pending | active | removed

    @property
    def own(self) -> bool:
        """The directory is this session's own (not shared from an ancestor)."""
        return self.owner_id == self.session_id

    def shared_with(self, session_id: str) -> WorkspaceBinding:
        """The same directory, bound to another session (a child that shares it)."""
        return WorkspaceBinding(**{**self.__dict__, "session_id": session_id})


@dataclass(frozen=True)
class PathLease:
    id: int
    workspace: str
    pattern: str
    session_id: str
    mode: str  # read | write
    owner_id: str | None
    acquired_at: float
    expires_at: float | None

    def live(self, now: float, owner_id: str | None) -> bool:
        return self.owner_id == owner_id and (self.expires_at is None or self.expires_at > now)


_BINDING_FIELDS = tuple(f.name for f in fields(WorkspaceBinding))


def _binding(row: Any) -> WorkspaceBinding:
    return WorkspaceBinding(**{name: getattr(row, name) for name in _BINDING_FIELDS})


def _lease(row: Any) -> PathLease:
    return PathLease(row.id, row.workspace, row.pattern, row.session_id, row.mode, row.owner_id,
                     row.acquired_at, row.expires_at)


# -- bindings ---------------------------------------------------------------------------
def bind(tx: Tx, b: WorkspaceBinding) -> None:
    """Record ``b`` (the session's workspace column follows its path) and say so."""
    tx.m.workspace.insert(**b.__dict__, created_at=tx.now, updated_at=tx.now).execute()
    if tx.session(b.session_id).workspace != b.path:
        tx.update_session(b.session_id, workspace=b.path)
    tx.event("FR-EVT-SESS-WORKSPACE-BOUND", b.session_id, None, {
        "mode": b.mode, "path": b.path, "owner_id": b.owner_id, "branch": b.branch,
        "repo": b.repo})


def binding(tx: Tx, session_id: str) -> WorkspaceBinding | None:
    row = tx.m.workspace.get_or_none(tx.m.workspace.session_id == session_id)
    return _binding(row) if row is not None else None


def read_binding(store: Store, session_id: str) -> WorkspaceBinding | None:
    with store._reading() as m:
        row = m.workspace.get_or_none(m.workspace.session_id == session_id)
    return _binding(row) if row is not None else None


def update_binding(tx: Tx, session_id: str, **changes: Any) -> None:
    """Change a binding and every binding that shares its directory (same owner)."""
    m = tx.m
    owner = m.workspace.get(m.workspace.session_id == session_id).owner_id
    m.workspace.update(**changes, updated_at=tx.now).where(m.workspace.owner_id == owner).execute()


def own_worktrees(store: Store, states: tuple[str, ...]) -> list[tuple[WorkspaceBinding, str]]:
    """Every session's own worktree binding in one of ``states``, with the session's
    state (what a host reconciles at open)."""
    with store._reading() as m:
        q = (m.workspace.select(m.workspace, m.session.state.alias("session_state"))
             .join(m.session, on=(m.session.id == m.workspace.session_id))
             .where((m.workspace.mode == "worktree") & (m.workspace.owner_id == m.workspace.session_id)
                    & m.workspace.state.in_(list(states)))
             .order_by(m.workspace.created_at))
        return [(_binding(row), str(getattr(row, "session_state"))) for row in q.objects()]  # noqa: B009


# -- path leases ------------------------------------------------------------------------
def store_owner(tx: Tx) -> str | None:
    """The store owner (host) this transaction writes for; None when no runtime holds it."""
    row = tx.m.owner.get_or_none(tx.m.owner.id == 1)
    return row.owner_id if row is not None else None


def leases_in(tx: Tx, workspace: str) -> list[PathLease]:
    """Every lease row of one workspace directory, live or not."""
    m = tx.m
    return [_lease(r) for r in m.path_lease.select().where(m.path_lease.workspace == workspace)
            .order_by(m.path_lease.id)]


def add_leases(
    tx: Tx, session_id: str, workspace: str, patterns: list[str], mode: str,
    owner_id: str | None, expires_at: float | None,
) -> None:
    """Insert leases (the caller decided they conflict with nobody's) and say so."""
    m = tx.m
    for pattern in patterns:
        m.path_lease.insert(workspace=workspace, pattern=pattern, session_id=session_id, mode=mode,
                            owner_id=owner_id, acquired_at=tx.now, expires_at=expires_at).execute()
    tx.event("FR-EVT-SESS-WORKSPACE-LEASED", session_id, None, {
        "workspace": workspace, "patterns": patterns, "mode": mode, "expires_at": expires_at})


def drop_leases(tx: Tx, ids: list[int]) -> None:
    """Delete lease rows that no longer count (expired, or replaced by a stronger one)."""
    if ids:
        tx.m.path_lease.delete().where(tx.m.path_lease.id.in_(ids)).execute()


def release_session(tx: Tx, session_id: str, reason: str) -> int:
    """Free every lease ``session_id`` holds; return how many."""
    # plain SQL: this runs in the transaction that ends every session
    patterns = [r[0] for r in tx._exec(
        'SELECT "pattern" FROM "path_lease" WHERE "session_id" = ? ORDER BY "id"', (session_id,))]
    if not patterns:
        return 0
    tx._exec('DELETE FROM "path_lease" WHERE "session_id" = ?', (session_id,))
    tx.event("FR-EVT-SESS-WORKSPACE-RELEASED", session_id, None,
             {"reason": reason, "patterns": patterns})
    return len(patterns)


def free_other_owners(tx: Tx, owner_id: str) -> int:
    """Free the leases taken by any store owner but ``owner_id`` (a host that died or
    closed); return how many."""
    m = tx.m
    stale = list(m.path_lease.select().where(
        (m.path_lease.owner_id != owner_id) | m.path_lease.owner_id.is_null()).order_by(m.path_lease.id))
    by_session: dict[str, list[str]] = {}
    for row in stale:
        by_session.setdefault(row.session_id, []).append(row.pattern)
    if stale:
        drop_leases(tx, [row.id for row in stale])
    for session_id, patterns in by_session.items():
        if tx.m.session.get_or_none(tx.m.session.id == session_id) is not None:
            tx.event("FR-EVT-SESS-WORKSPACE-RELEASED", session_id, None,
                     {"reason": "host_changed", "patterns": patterns})
    return len(stale)


def leases(store: Store, *, session_id: str | None = None, workspace: str | None = None) -> list[PathLease]:
    """Lease rows as stored (live or not), oldest first."""
    with store._reading() as m:
        q = m.path_lease.select()
        if session_id is not None:
            q = q.where(m.path_lease.session_id == session_id)
        if workspace is not None:
            q = q.where(m.path_lease.workspace == workspace)
        return [_lease(r) for r in q.order_by(m.path_lease.id)]
