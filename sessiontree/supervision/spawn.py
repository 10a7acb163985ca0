"""The spawn decision: depth, spawn cap, capabilities, provider, budget carving.

Runs on the scheduler's thread, so the checks and the carve are one atomic step and
two siblings can never both take the same remaining budget.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sessiontree._budget import Budget
from sessiontree._messages import SessionSpawnRequest, SessionSpawnResponse
from sessiontree._reasons import Reason
from sessiontree._states import SessionState
from sessiontree.persistence.records import SessionRecord
from sessiontree.persistence.tx import Tx

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
    if parent.state != SessionState.RUNNING.value:
        return Reason.PARENT_NOT_ACTIVE, f"parent is {parent.state}, not running"
    if parent.depth + 1 > limits.max_depth:
        return Reason.DEPTH_LIMIT, f"child depth {parent.depth + 1} > max_depth {limits.max_depth}"
    cap = parent.max_children if parent.max_children is not None else limits.max_children
    if parent.spawn_count >= cap:
        return Reason.SPAWN_CAP, f"session already spawned {parent.spawn_count} of {cap} children"
    missing = sorted(set(req.capabilities) - set(parent.capabilities))
    if missing:
        return Reason.CAPABILITY_DENIED, f"parent does not hold {', '.join(missing)}"
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
    return carved


def decide(sched: SchedulerActor, req: SessionSpawnRequest) -> SessionSpawnResponse:
    """Accept (creating the child and its first job) or reject with a reason code."""
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
                return SessionSpawnResponse(accepted=True, child_id=child.id, budget=child.budget)
        tx.event("FR-EVT-SESS-SPAWN-REQUESTED", parent.id, None, {
            "parent_id": parent.id, "role": req.role, "depth": parent.depth + 1,
            "budget": req.budget.model_dump(mode="json") if req.budget else None,
            "call_id": req.call_id,
        })
        verdict = _check(sched, parent, req)
        if not isinstance(verdict, Budget):
            return _reject(tx, parent.id, *verdict)
        child, _ = tx.create_session(
            role=req.role,
            provider=req.provider or parent.provider,
            model=req.model or parent.model,
            budget=verdict,
            parent=parent,
            capabilities=tuple(req.capabilities),
            workspace=parent.workspace,
            restart=req.restart or sched.ctx.limits.default_restart,
            child_strategy=sched.ctx.limits.default_strategy,
            spawn_key=req.spawn_key,
            system=req.system,
            task=req.task,
            spawned_by=req.call_id,
        )
        tx.update_session(
            parent.id,
            spawn_count=parent.spawn_count + 1,
            carved=parent.carved + verdict.as_usage(),
        )
        tx.event("FR-EVT-SESS-SPAWN-ACCEPTED", child.id, None, {
            "parent_id": parent.id, "child_id": child.id, "depth": child.depth,
            "budget": verdict.model_dump(mode="json"),
        })
        return SessionSpawnResponse(accepted=True, child_id=child.id, budget=verdict)
