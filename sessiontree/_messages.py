"""The spawn contract: what a session asks for, what the scheduler answers, and what a
child posts to its parent when it ends (pydantic, validated).

These are core values: the built-in tools, the actors and the scheduler all exchange
them, so they live below all three."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sessiontree._budget import Budget, Usage
from sessiontree._limits import AutoShutdown, RestartType, Strategy, SupervisorPolicy
from sessiontree._reasons import Reason


class _Msg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SessionSpawnRequest(_Msg):
    """A session asks the scheduler for a child.

    Supervision of the child, each optional (``None``: the runtime's ``Limits``):
    ``restart`` (its restart type; default ``Limits.default_restart``, ``transient``),
    ``shutdown`` (seconds its stopped attempt gets before it is abandoned, or
    ``"brutal_kill"``; default 5), ``significant`` (its end may shut its parent down;
    default false, never with ``permanent``); and for the child's *own* children:
    ``child_strategy`` (default ``one_for_one``), ``supervisor`` (its supervisor
    intensity; default 5 restarts in 60 s) and ``auto_shutdown`` (default ``never``).
    ``keep_open``: the child is conversational -- it answers, then waits ``idle`` for
    messages (``send_to_child``) until it is closed; default false.
    """

    parent_id: str
    role: str = Field(min_length=1, max_length=200)
    task: str = Field(max_length=200_000)
    capabilities: tuple[str, ...] = ()
    budget: Budget | None = None
    # "shared" (and "locked"): the parent's directory and mode, under path leases;
    # "worktree": an own git worktree and branch (the parent must be in worktree mode)
    workspace_mode: Literal["shared", "locked", "worktree"] = "shared"
    provider: str | None = None
    model: str | None = None
    system: str | None = None
    restart: RestartType | None = None
    child_strategy: Strategy | None = None
    supervisor: SupervisorPolicy | None = None
    auto_shutdown: AutoShutdown | None = None
    significant: bool = False
    shutdown: float | Literal["brutal_kill"] | None = Field(default=None)
    keep_open: bool = False
    spawn_key: str | None = None
    call_id: str | None = None

    @model_validator(mode="after")
    def _check_supervision(self) -> SessionSpawnRequest:
        check_child_supervision(self.restart, self.significant, self.shutdown)
        return self


def check_child_supervision(restart: str | None, significant: bool, shutdown: object) -> None:
    """The combinations a child's supervision may not take; raises ``ValueError``."""
    if significant and restart == "permanent":
        raise ValueError("a permanent child cannot be significant (as in OTP): it is "
                         "restarted, never ends on its own")
    if isinstance(shutdown, float | int) and not 0 <= shutdown <= 3600:
        raise ValueError("shutdown must be between 0 and 3600 seconds or 'brutal_kill'")


class SessionSpawnResponse(_Msg):
    """The scheduler's answer: accepted with the child id, or rejected with a reason."""

    accepted: bool
    child_id: str | None = None
    reason: Reason | None = None
    detail: str = ""
    budget: Budget | None = None
    granted: tuple[str, ...] = ()  # the child's capabilities: what it asked for, narrowed
    dropped: tuple[str, ...] = ()  # asked for and not held by the parent: refused


class SessionAnnounceBack(_Msg):
    """Posted into the parent's mailbox, exactly once, when a child ends."""

    kind: Literal["SessionAnnounceBack"] = "SessionAnnounceBack"
    child_id: str
    parent_id: str
    status: Literal["completed", "failed", "cancelled"]
    reason: str | None = None
    summary_hash: str | None = None
    usage: Usage = Usage()
