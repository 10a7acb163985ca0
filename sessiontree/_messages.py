"""The spawn contract: what a session asks for, what the scheduler answers, and what a
child posts to its parent when it ends (pydantic, validated).

These are core values: the built-in tools, the actors and the scheduler all exchange
them, so they live below all three."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from sessiontree._budget import Budget, Usage
from sessiontree._reasons import Reason


class _Msg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SessionSpawnRequest(_Msg):
    """A session asks the scheduler for a child."""

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
    restart: Literal["permanent", "transient", "temporary"] | None = None
    spawn_key: str | None = None
    call_id: str | None = None


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
