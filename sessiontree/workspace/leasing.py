"""Path leases in a ``locked`` workspace: reads share, writes exclude.

A lease names a path or a glob (``workspace.globs``) in one workspace directory, the
session holding it, its mode, when it was taken and when it expires (never, by
default: it is held until the session ends). The decision is a pure function,
:func:`conflict`; :func:`acquire` applies it in one store transaction, so two sessions
racing for one path are decided by the store's write lock: exactly one wins, and the
other is refused at once -- no waiting, hence no deadlock. A refusal is recorded as
``FR-EVT-SESS-WORKSPACE-CONFLICT`` (in the same transaction) and raised as
:class:`~sessiontree._errors.WorkspaceConflict` naming the path, the holder session and
its role, and the lease mode.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from sessiontree._errors import WorkspaceConflict
from sessiontree.persistence import workspace as rows
from sessiontree.persistence.store import Store
from sessiontree.persistence.workspace import PathLease
from sessiontree.workspace import globs


class LeaseMode(StrEnum):
    READ = "read"
    WRITE = "write"


def excludes(held: str, wanted: str) -> bool:
    """Reads share; a write excludes every other lease, and is excluded by every one."""
    return held == LeaseMode.WRITE or wanted == LeaseMode.WRITE


def conflict(
    session_id: str, pattern: str, mode: str, leases: Iterable[PathLease], now: float,
    owner_id: str | None,
) -> PathLease | None:
    """The first live lease of another session that excludes ``mode`` on ``pattern``,
    or None. A session never conflicts with itself; an expired lease, or one taken by
    another host (store owner), no longer counts."""
    for lease in leases:
        if lease.session_id == session_id or not lease.live(now, owner_id):
            continue
        if excludes(lease.mode, mode) and globs.overlaps(lease.pattern, pattern):
            return lease
    return None


def _covered(session_id: str, pattern: str, mode: str, leases: list[PathLease], now: float,
             owner_id: str | None) -> bool:
    return any(
        lease.session_id == session_id and lease.live(now, owner_id) and lease.expires_at is None
        and (lease.mode == LeaseMode.WRITE or mode == LeaseMode.READ)
        and globs.subsumes(lease.pattern, pattern)
        for lease in leases)


def acquire(
    store: Store, session_id: str, workspace: str, patterns: list[str], mode: str, *,
    hold: bool = True, ttl: float | None = None,
) -> list[str]:
    """Take ``mode`` leases on every pattern, all or none; return the patterns newly
    leased (those the session did not already hold). ``hold=False`` only checks (a
    read that takes no lease). Raises :class:`WorkspaceConflict`."""
    refused: tuple[str, PathLease, str] | None = None
    added: list[str] = []
    with store.transaction() as tx:
        owner, now = rows.store_owner(tx), tx.now
        leases = rows.leases_in(tx, workspace)
        for pattern in patterns:
            found = conflict(session_id, pattern, mode, leases, now, owner)
            if found is not None:
                role = tx.session(found.session_id).role
                refused = (pattern, found, role)
                tx.event("FR-EVT-SESS-WORKSPACE-CONFLICT", session_id, None, {
                    "kind": "lease", "paths": [pattern], "requested_mode": mode,
                    "holder_session_id": found.session_id, "holder_role": role,
                    "lease_mode": found.mode, "lease_pattern": found.pattern})
                break
        if refused is None and hold:
            rows.drop_leases(tx, [x.id for x in leases if not x.live(now, owner)])
            for pattern in patterns:
                if pattern not in added and not _covered(session_id, pattern, mode, leases, now, owner):
                    added.append(pattern)
            if added:
                expires = None if ttl is None else now + ttl
                rows.add_leases(tx, session_id, workspace, added, mode, owner, expires)
    if refused is not None:
        pattern, lease, role = refused
        until = "until it ends" if lease.expires_at is None else f"until {lease.expires_at:.0f}"
        raise WorkspaceConflict(
            f"{mode} of {pattern} refused: {lease.pattern} is leased for {lease.mode} by "
            f"session {lease.session_id} (role {role}) {until}",
            kind="lease", path=pattern, holder_session_id=lease.session_id, holder_role=role,
            lease_mode=lease.mode, lease_pattern=lease.pattern, requested_mode=mode)
    return added
