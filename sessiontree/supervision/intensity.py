"""A parent's supervisor intensity: decide, then apply.

Besides each session's own restart intensity, a parent counts the restarts of *all* its
children within its ``child_period`` (a group restart counts once). When one more
restart would exceed ``child_max_restarts``, the parent gives up instead: it fails with
reason ``restart_intensity`` (``FR-EVT-SESS-SUPERVISOR-GAVE-UP`` says why), its children
are torn down in reverse start order (the crashed one included: nothing is restarted),
and its own parent is told through its mailbox; that grandparent's strategy then treats
the failure as it treats any child failing past its intensity (escalation one level up,
as in OTP, where a supervisor past its intensity terminates its children and exits).

:func:`decide_supervisor` is pure (tested by a table); :func:`give_up` writes the
outcome inside the crash's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

from sessiontree._reasons import Reason
from sessiontree._states import SessionState
from sessiontree.actors.ending import end_session
from sessiontree.persistence.records import SessionRecord
from sessiontree.persistence.tx import Tx


@dataclass(frozen=True)
class SupervisorDecision:
    """Whether a parent may restart one more child, and its restart log if it does."""

    give_up: bool
    restart_log: tuple[float, ...]  # the restarts in the period, this one included

    @property
    def restarts_in_period(self) -> int:
        return len(self.restart_log)


def decide_supervisor(
    max_restarts: int, period: float, restart_log: tuple[float, ...], now: float
) -> SupervisorDecision:
    """One more restart of a child (or of a group) at ``now``: allowed while the
    restarts within ``period`` seconds, this one included, are at most
    ``max_restarts``. Pure."""
    recent = (*(t for t in restart_log if now - t < period), now)
    return SupervisorDecision(len(recent) > max_restarts, recent)


def give_up(
    tx: Tx, parent: SessionRecord, cause: SessionRecord, decision: SupervisorDecision
) -> None:
    """The parent exceeded its supervisor intensity: fail it and escalate."""
    tx.update_session(parent.id, child_restart_log=list(decision.restart_log))
    tx.event("FR-EVT-SESS-SUPERVISOR-GAVE-UP", parent.id, None, {
        "restarts_in_period": decision.restarts_in_period,
        "max_restarts": parent.child_max_restarts, "period": parent.child_period,
        "cause_session_id": cause.id})
    end_session(tx, parent.id, SessionState.FAILED, Reason.RESTART_INTENSITY)
    if parent.parent_id is not None:
        escalate(tx, tx.session(parent.parent_id), tx.session(parent.id))


def escalate(tx: Tx, parent: SessionRecord, failed: SessionRecord) -> None:
    """A child failed past an intensity: its parent's strategy reaches its siblings
    (``one_for_all``: every live one; ``rest_for_one``: the younger ones), which end
    ``cancelled`` / ``sibling_failed``, youngest first. The parent decides what next."""
    if SessionState(parent.state).terminal:
        return
    live = [s for s in tx.children_of(parent.id, live_only=True) if s.id != failed.id]
    if parent.child_strategy == "one_for_all":
        reached = live
    elif parent.child_strategy == "rest_for_one":
        reached = [s for s in live if s.spawn_index > failed.spawn_index]
    else:
        reached = []
    for sib in reversed(reached):
        end_session(tx, sib.id, SessionState.CANCELLED, Reason.SIBLING_FAILED)
