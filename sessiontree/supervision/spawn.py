"""The spawn decision: depth, spawn cap, provider, budget carving, and the child's
capability tokens (the intersection of what it asked for with what its parent holds:
``tools.tokens``; what was dropped is named in the response, not a rejection).

Runs on the scheduler's thread, so the checks and the carve are one atomic step and
two siblings can never both take the same remaining budget.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sessiontree._budget import Budget
from sessiontree._errors import WorkspaceError
from sessiontree._limits import supervision_fields
from sessiontree._messages import SessionSpawnRequest, SessionSpawnResponse
from sessiontree._reasons import Reason
from sessiontree._states import SessionState
from sessiontree.actors.ending import end_session
from sessiontree.persistence import capabilities
from sessiontree.persistence.records import SessionRecord
from sessiontree.persistence.tx import Tx
from sessiontree.providers.pricing import knows_cost
from sessiontree.tools import scopes, tokens

if TYPE_CHECKING:
    from sessiontree.supervision.scheduler import SchedulerActor


def _reject(tx: Tx, parent_id: str, reason: Reason, detail: str) -> SessionSpawnResponse:
    tx.event("FR-EVT-SESS-SPAWN-REJECTED", parent_id, None,
             {"parent_id": parent_id, "reason": reason.value, "detail": detail})
    return SessionSpawnResponse(accepted=False, reason=reason, detail=detail)


def _check(
    sched: SchedulerActor, parent: SessionRecord, req: SessionSpawnRequest
) -> tuple[Reason, str] | Budget:
    limits = sched.ctx.limits
    if parent.id in sched.pauses.paused:
        return Reason.PAUSED, "parent is paused by an operator; resume it to spawn"
    if parent.state != SessionState.RUNNING.value:
        return Reason.PARENT_NOT_ACTIVE, f"parent is {parent.state}, not running"
    if parent.depth + 1 > limits.max_depth:
        return Reason.DEPTH_LIMIT, f"child depth {parent.depth + 1} > max_depth {limits.max_depth}"
    cap = parent.max_children if parent.max_children is not None else limits.max_children
    if parent.spawn_count >= cap:
        return Reason.SPAWN_CAP, f"session already spawned {parent.spawn_count} of {cap} children"
    if req.significant and parent.auto_shutdown == "never":
        return Reason.INVALID_INPUT, ("a significant child needs a parent with auto_shutdown "
                                      "any_significant or all_significant (as in OTP)")
    provider = req.provider or parent.provider
    if provider not in sched.ctx.providers:
        return Reason.UNKNOWN_PROVIDER, f"provider {provider!r} is not registered"
    available = parent.available(sched.reserved(parent.id))
    # No budget asked for: a fair share -- what is available split over the spawn slots
    # left, plus one share the parent keeps for itself.
    wanted = req.budget or available.share(cap - parent.spawn_count + 1)
    carved = available.carve(wanted)
    if carved is None:
        return Reason.BUDGET, (
            f"asked for {req.budget.model_dump(exclude_none=True) if req.budget else 'all'}, "
            f"available {available.model_dump(exclude_none=True)}"
        )
    # A child that cannot fund its first run would only fail on it: refuse it now.
    short = carved.exhausted_dimension(limits.reservation())
    if short is not None:
        return Reason.BUDGET, (
            f"the child's budget {carved.model_dump(exclude_none=True)} cannot fund one model "
            f"run ({short}; a run reserves {limits.reservation().model_dump(exclude_defaults=True)}"
            f"), available {available.model_dump(exclude_none=True)}"
        )
    model = req.model or parent.model
    if carved.cost is not None and not knows_cost(sched.ctx.providers[provider], model):
        return Reason.COST_UNKNOWN, (
            f"the child has a cost budget, and model {model!r} of provider {provider!r} "
            "has no price")
    return carved


def decide(sched: SchedulerActor, req: SessionSpawnRequest) -> SessionSpawnResponse:
    """Accept (creating the child and its first job) or reject with a reason code.

    A child that asked for its own worktree gets it made here, after the commit and
    before this returns -- so before its first run can be dispatched (this thread
    dispatches). If git fails, the child ends ``failed`` at once and the spawn is
    rejected with ``workspace_unavailable``.
    """
    response = _decide(sched, req)
    if response.accepted and response.child_id and req.workspace_mode == "worktree":
        try:
            sched.ctx.workspaces.open_worktree(response.child_id)
        except WorkspaceError as exc:
            with sched.ctx.store.transaction() as tx:
                end_session(tx, response.child_id, SessionState.FAILED,
                            Reason.WORKSPACE_UNAVAILABLE)
                return _reject(tx, req.parent_id, Reason.WORKSPACE_UNAVAILABLE, str(exc))
    return response


def _decide(sched: SchedulerActor, req: SessionSpawnRequest) -> SessionSpawnResponse:
    if sched.closing:
        return SessionSpawnResponse(accepted=False, reason=Reason.RUNTIME_CLOSED,
                                    detail="the runtime is closing")
    store = sched.ctx.store
    with store.transaction() as tx:
        parent = tx.session(req.parent_id)
        run = sched.running.get(parent.id)
        if run is not None:  # the parent's run asked: what this writes belongs to it
            tx.on_job(run.job_id, parent.id, cause=True)
        if req.spawn_key is not None:
            child = tx.session_by_spawn_key(req.spawn_key)
            if child is not None:  # the same spawn call, re-run after a crash
                return SessionSpawnResponse(
                    accepted=True, child_id=child.id, budget=child.budget,
                    granted=child.capabilities, dropped=tuple(
                        c for c in req.capabilities if not scopes.covered(child.capabilities, c)))
        tx.event("FR-EVT-SESS-SPAWN-REQUESTED", parent.id, None, {
            "parent_id": parent.id, "role": req.role, "depth": parent.depth + 1,
            "budget": req.budget.model_dump(mode="json") if req.budget else None,
            "call_id": req.call_id,
        })
        verdict = _check(sched, parent, req)
        if not isinstance(verdict, Budget):
            return _reject(tx, parent.id, *verdict)
        refused = sched.ctx.workspaces.check_child(tx, parent, req.workspace_mode)
        if refused is not None:
            return _reject(tx, parent.id, *refused)
        # the intersection of what is asked for and what the parent holds now
        derived = tokens.derive(req.capabilities, capabilities.tokens_of(tx, parent.id), tx.now)
        child, _ = tx.create_session(
            role=req.role,
            provider=req.provider or parent.provider,
            model=req.model or parent.model,
            budget=verdict,
            parent=parent,
            capabilities=derived.granted,
            workspace=parent.workspace,
            spawn_key=req.spawn_key,
            system=req.system,
            task=req.task,
            **supervision_fields(  # type: ignore[arg-type]
                sched.ctx.limits, restart=req.restart, child_strategy=req.child_strategy,
                shutdown=req.shutdown, auto_shutdown=req.auto_shutdown,
                supervisor=req.supervisor, significant=req.significant,
                keep_open=req.keep_open),
            spawned_by=req.call_id,
        )
        capabilities.issue(tx, child.id, [
            (g.capability, g.derived_from, g.expires_at) for g in derived.grants])
        sched.ctx.workspaces.bind_child(tx, parent, child.id, req.workspace_mode)
        tx.update_session(
            parent.id,
            spawn_count=parent.spawn_count + 1,
            carved=parent.carved + verdict.as_usage(),
        )
        tx.event("FR-EVT-SESS-SPAWN-ACCEPTED", child.id, None, {
            "parent_id": parent.id, "child_id": child.id, "depth": child.depth,
            "budget": verdict.model_dump(mode="json"),
            "granted": list(derived.granted), "dropped": list(derived.dropped),
        })
        return SessionSpawnResponse(accepted=True, child_id=child.id, budget=verdict,
                                    granted=derived.granted, dropped=derived.dropped)
