"""Workspaces: the workspace layer's one entry point, one per runtime.

The runtime binds roots (:meth:`Workspaces.bind_root`), the scheduler binds children
at spawn (:meth:`bind_child`, then :meth:`open_worktree`), session actors settle a
completed session's worktree (:meth:`session_completed`), and the workspace tools call
the file operations (``workspace.operations``).

Threads: any thread may call it -- a host thread (binding a root, reconciling at open),
the scheduler's thread (binding a child and making its worktree, during the spawn),
pooled actor threads (the file tools; removing a completed session's worktree). Git
commands on one repository, and every file
operation in a ``worktree``-mode directory, run under that repository's lock (a
write, its commit and a merge never interleave); a store transaction is only ever
opened inside that lock, never the other way round, so the two cannot deadlock.
In ``locked`` mode the path leases alone decide: no lock is held across a write.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

from sessiontree._errors import WorkspaceError
from sessiontree._reasons import Reason
from sessiontree._states import SessionState
from sessiontree.persistence import workspace as rows
from sessiontree.persistence.records import SessionRecord
from sessiontree.persistence.store import Store
from sessiontree.persistence.tx import Tx
from sessiontree.persistence.workspace import WorkspaceBinding
from sessiontree.workspace import worktrees
from sessiontree.workspace.binding import RootPlan, WorkspaceMode, child_binding, plan_root, root_binding
from sessiontree.workspace.git import author_for
from sessiontree.workspace.paths import RaceHook, Root

log = logging.getLogger(__name__)


class Workspaces:
    """Bindings, worktrees and the locks around them, for one store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._locks: dict[str, threading.RLock] = {}
        self._locks_guard = threading.Lock()
        self.race_hooks: list[RaceHook] = []
        """Test seam, handed to every :class:`Root` (see ``paths.Root.race_hooks``)."""

    # -- locks and lookups ------------------------------------------------------------
    @contextlib.contextmanager
    def locked(self, b: WorkspaceBinding) -> Iterator[None]:
        """The repository's lock in ``worktree`` mode; nothing in ``locked`` mode."""
        if b.mode != WorkspaceMode.WORKTREE or b.common_dir is None:
            yield
            return
        with self._locks_guard:
            lock = self._locks.setdefault(b.common_dir, threading.RLock())
        with lock:
            yield

    def root(self, b: WorkspaceBinding) -> Root:
        root = Root(b.path)
        root.race_hooks = self.race_hooks
        return root

    def binding(self, session_id: str) -> WorkspaceBinding:
        """The session's binding, its worktree made if it is still pending. Raises
        :class:`WorkspaceError` if the session has no workspace or its worktree is gone."""
        b = rows.read_binding(self.store, session_id)
        if b is None:
            workspace = self.store.session(session_id).workspace
            if workspace is None:
                raise WorkspaceError("this session has no workspace", reason=Reason.WORKSPACE_UNAVAILABLE)
            return WorkspaceBinding(session_id, WorkspaceMode.LOCKED.value, workspace, session_id)
        if b.state == "pending":
            b = self.open_worktree(b.owner_id)
            b = b if b.session_id == session_id else b.shared_with(session_id)
        if b.state == "removed":
            raise WorkspaceError(f"the worktree of {b.owner_id} was removed when it completed",
                                 reason=Reason.WORKSPACE_UNAVAILABLE)
        return b

    def session(self, session_id: str) -> SessionRecord:
        return self.store.session(session_id)

    def author(self, session_id: str) -> tuple[str, str]:
        return author_for(session_id, self.store.session(session_id).role)

    # -- binding ----------------------------------------------------------------------
    def plan_root(self, workspace: str | Path, mode: str | None) -> RootPlan:
        """Check a host's workspace for a root (see ``binding.plan_root``)."""
        return plan_root(workspace, mode)

    def bind_root(self, tx: Tx, session_id: str, plan: RootPlan) -> WorkspaceBinding:
        """Bind a new root in the transaction that creates it. In ``worktree`` mode its
        worktree is made by :meth:`open_worktree`, after that transaction commits."""
        b = root_binding(plan, session_id)
        rows.bind(tx, b)
        return b

    def check_child(self, tx: Tx, parent: SessionRecord, requested: str) -> tuple[Reason, str] | None:
        """A spawn's workspace request, checked before the child exists."""
        verdict = child_binding(self._parent(tx, parent), parent.id, parent.workspace, None, requested)
        return verdict if isinstance(verdict, tuple) else None

    @staticmethod
    def _parent(tx: Tx, parent: SessionRecord) -> WorkspaceBinding | None:
        # a session without a workspace has no binding: spare the spawn a read
        return None if parent.workspace is None else rows.binding(tx, parent.id)

    def bind_child(
        self, tx: Tx, parent: SessionRecord, child_id: str, requested: str
    ) -> WorkspaceBinding | None:
        """Bind a new child in the transaction that creates it (after :meth:`check_child`)."""
        verdict = child_binding(self._parent(tx, parent), parent.id, parent.workspace, child_id, requested)
        if verdict is None:
            return None
        if isinstance(verdict, tuple):
            raise WorkspaceError(verdict[1], reason=verdict[0])
        rows.bind(tx, verdict)
        return verdict

    def open_worktree(self, session_id: str) -> WorkspaceBinding:
        """Make the session's own worktree and branch (idempotent; a no-op for a
        session without one). Raises :class:`WorkspaceError` if git fails."""
        b = rows.read_binding(self.store, session_id)
        if b is None or not b.own or b.mode != WorkspaceMode.WORKTREE or b.state != "pending":
            if b is None:
                raise WorkspaceError("this session has no workspace", reason=Reason.WORKSPACE_UNAVAILABLE)
            return b
        with self.locked(b):
            try:
                git_dir, base = worktrees.create(b)
            except OSError as exc:
                raise WorkspaceError(f"cannot make the worktree {b.path}: {exc}",
                                     reason=Reason.WORKSPACE_UNAVAILABLE) from None
            with self.store.transaction() as tx:
                current = rows.binding(tx, session_id)
                if current is not None and current.state == "pending":
                    rows.update_binding(tx, session_id, state="active", git_dir=git_dir, base=base)
                    tx.event("FR-EVT-SESS-WORKSPACE-WORKTREE", session_id, None, {
                        "action": "created", "path": b.path, "branch": b.branch, "commit": base})
        found = rows.read_binding(self.store, session_id)
        assert found is not None
        return found

    def session_completed(self, session_id: str) -> None:
        """A session completed: remove its own worktree (its branch stays). A failed or
        cancelled session keeps its worktree, for inspection. Never raises: the
        session's outcome is already committed."""
        try:
            if self.store.session(session_id).workspace is None:  # a cached read: most sessions
                return
            b = rows.read_binding(self.store, session_id)
            if b is None or not b.own or b.mode != WorkspaceMode.WORKTREE or b.state != "active":
                return
            with self.locked(b):
                last = worktrees.remove(b, self.author(session_id))
                with self.store.transaction() as tx:
                    rows.update_binding(tx, session_id, state="removed")
                    tx.event("FR-EVT-SESS-WORKSPACE-WORKTREE", session_id, None, {
                        "action": "removed", "path": b.path, "branch": b.branch, "commit": last})
        except Exception:
            log.exception("removing the worktree of %s failed; it stays for inspection", session_id)

    def reconcile(self) -> None:
        """At open: finish what a dead host left half done -- remove the worktrees of
        completed sessions, make those of live sessions still pending."""
        for b, state in rows.own_worktrees(self.store, ("pending", "active")):
            if state == SessionState.COMPLETED.value and b.state == "active":
                self.session_completed(b.session_id)
            elif b.state == "pending" and not SessionState(state).terminal:
                try:
                    self.open_worktree(b.session_id)
                except WorkspaceError:
                    log.exception("cannot make the worktree of %s", b.session_id)
