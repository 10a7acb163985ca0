"""Message types exchanged between sessions and the scheduler (pydantic, validated)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from sessiontree.budget import Budget, Usage
from sessiontree.reasons import Reason


class _Msg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SessionSpawnRequest(_Msg):
    """A session asks the scheduler for a child."""

    parent_id: str
    role: str = Field(min_length=1, max_length=200)
    task: str = Field(max_length=200_000)
    capabilities: tuple[str, ...] = ()
    budget: Budget | None = None
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


class SessionAnnounceBack(_Msg):
    """Posted into the parent's mailbox, exactly once, when a child ends."""

    kind: Literal["SessionAnnounceBack"] = "SessionAnnounceBack"
    child_id: str
    parent_id: str
    status: Literal["completed", "failed", "cancelled"]
    reason: str | None = None
    summary_hash: str | None = None
    usage: Usage = Usage()


class ProviderUsed(_Msg):
    """A session actor tells the scheduler that a provider call returned: the tokens it
    used feed the provider's tokens-per-minute window, and the success grows the
    provider's effective concurrency (``supervision.backpressure``)."""

    provider: str
    job_id: str
    tokens: int = Field(ge=0)
