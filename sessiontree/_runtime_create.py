"""Making root sessions: :meth:`create_session` and :meth:`enqueue`, every argument
checked before anything is written. :class:`~sessiontree._runtime.Runtime` inherits them.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sessiontree._budget import Budget
from sessiontree._checks import (
    check_capabilities,
    check_fundable,
    check_id,
    check_meta,
    check_row_text,
)
from sessiontree._errors import InvalidInput, WorkspaceError
from sessiontree._limits import (
    AutoShutdown,
    RestartType,
    Shutdown,
    Strategy,
    SupervisorPolicy,
    supervision_fields,
)
from sessiontree._reasons import Reason
from sessiontree._security import check_grants, issue_root
from sessiontree._states import SessionState
from sessiontree.actors.context import RuntimeContext
from sessiontree.actors.ending import end_session
from sessiontree.persistence.store import Store
from sessiontree.providers.pricing import knows_cost


class RuntimeCreate:
    """Root sessions made and queued (see the module docstring)."""

    _store: Store
    _ctx: RuntimeContext

    def _check_open(self) -> None:
        """Raise if the runtime can no longer serve a call (the runtime overrides it)."""

    def create_session(
        self,
        task: str,
        *,
        role: str = "root",
        provider: str | None = None,
        model: str = "default",
        budget: Budget | dict[str, Any] | None = None,
        capabilities: Iterable[str] = (),
        capabilities_expire_at: float | None = None,
        consent: Iterable[str] = (),
        workspace: str | Path | None = None,
        workspace_mode: str | None = None,
        system: str | None = None,
        max_children: int | None = None,
        restart: RestartType | None = None,
        child_strategy: Strategy | None = None,
        start: bool = True,
        meta: dict[str, Any] | None = None,
        keep_open: bool = False,
        supervisor: SupervisorPolicy | None = None,
        auto_shutdown: AutoShutdown | None = None,
        shutdown: Shutdown | None = None,
    ) -> str:
        """Create a root session (and queue its first model_run unless ``start=False``).

        ``workspace`` binds a directory to the session, in ``workspace_mode``
        ``"locked"`` (the default: sessions share it under path leases) or
        ``"worktree"`` (the directory's git repository; the session gets its own
        worktree on branch ``sessiontree/<session-id>``, made before its first run).
        ``capabilities`` are the root's tokens (expiring at ``capabilities_expire_at``,
        a clock time, if given): what the tree may ever hold. ``consent`` names cloud
        providers the tree may use without asking (see :meth:`grant_consent`).
        ``keep_open=True`` makes it conversational: after answering it waits ``idle``
        for :meth:`send` until :meth:`close_session`. For its children: ``child_strategy``
        (default ``one_for_one``), ``supervisor`` (its supervisor intensity; default
        ``Limits.supervisor``, 5 restarts in 60 s) and ``auto_shutdown`` (``never``,
        ``any_significant``, ``all_significant``; default ``never``). ``shutdown``:
        seconds a stopped attempt of its gets, or ``"brutal_kill"`` (default 5).
        Returns the session id. Raises :class:`InvalidInput` for bad arguments (among
        them ``capabilities`` given as one ``str``, ``meta`` that is not a JSON object,
        a budget that cannot fund a single model run: fewer tokens than
        ``Limits.reserve_tokens``, for instance),
        :class:`WorkspaceError` if git cannot make the worktree (the session then ends
        ``failed`` / ``workspace_unavailable``).
        """
        self._check_open()
        if not isinstance(task, str):
            raise InvalidInput("task must be a str")
        if not isinstance(role, str) or not role.strip():
            raise InvalidInput("role must be a non-empty str")
        check_row_text("role", role)
        check_id("model", model)
        provider = provider or self._default_provider()
        if provider not in self._ctx.providers:
            raise InvalidInput(f"provider {provider!r} is not registered", provider=provider)
        try:
            budget_v = (
                self._ctx.limits.default_budget if budget is None
                else budget if isinstance(budget, Budget) else Budget.model_validate(budget)
            )
        except ValidationError as exc:
            raise InvalidInput(f"invalid budget: {exc}") from exc
        if budget_v.cost is not None and not knows_cost(self._ctx.providers[provider], model):
            raise InvalidInput(  # a cost budget on an unpriced model could not be enforced
                f"a cost budget needs a price for model {model!r} of provider {provider!r}; "
                "give the provider one (prices=...) or budget tokens instead",
                reason=Reason.COST_UNKNOWN, provider=provider, model=model)
        check_fundable(budget_v, self._ctx.limits)
        caps, consent_to = check_grants(check_capabilities(capabilities),
                                        capabilities_expire_at, consent)
        meta = check_meta(meta)
        if max_children is not None and (
                type(max_children) is not int or max_children < 0):
            raise InvalidInput("max_children must be an int >= 0")
        try:
            supervision = supervision_fields(
                self._ctx.limits, restart=restart, child_strategy=child_strategy,
                shutdown=shutdown, auto_shutdown=auto_shutdown, supervisor=supervisor,
                keep_open=keep_open)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
        workspaces = self._ctx.workspaces
        if workspace is None and workspace_mode is not None:
            raise InvalidInput("workspace_mode needs a workspace")
        plan = None if workspace is None else workspaces.plan_root(workspace, workspace_mode)
        own_tree = plan is not None and plan.mode == "worktree"
        with self._store.transaction() as tx:
            session, _ = tx.create_session(
                role=role, provider=provider, model=model, budget=budget_v,
                capabilities=caps, workspace=plan.directory if plan else None,
                max_children=max_children, system=system, task=task, meta=meta,
                enqueue=start and not own_tree, **supervision,  # type: ignore[arg-type]
            )
            issue_root(tx, session.id, caps, capabilities_expire_at, consent_to)
            if plan is not None:
                workspaces.bind_root(tx, session.id, plan)
        if own_tree:  # its worktree exists before its first run is queued
            self._open_root_worktree(session.id, enqueue=start)
        return session.id

    def _open_root_worktree(self, session_id: str, *, enqueue: bool) -> None:
        """A new root's worktree, then its first run queued. If git cannot make it, the
        root ends ``failed`` / ``workspace_unavailable`` and the error is raised."""
        try:
            self._ctx.workspaces.open_worktree(session_id)
        except WorkspaceError:
            with self._store.transaction() as tx:
                end_session(tx, session_id, SessionState.FAILED, Reason.WORKSPACE_UNAVAILABLE)
            raise
        if enqueue:
            with self._store.transaction() as tx:
                tx.set_state(session_id, SessionState.QUEUED, Reason.ENQUEUED)
                tx.enqueue(session_id)

    def _default_provider(self) -> str:
        if len(self._ctx.providers) == 1:
            return next(iter(self._ctx.providers))
        raise InvalidInput("name the provider: none or several are registered")

    def enqueue(self, session_id: str) -> str:
        """Queue the first model_run of a session created with ``start=False``."""
        self._check_open()
        check_id("session_id", session_id)
        with self._store.transaction() as tx:
            tx.set_state(session_id, SessionState.QUEUED, Reason.ENQUEUED)
            return tx.enqueue(session_id).id
