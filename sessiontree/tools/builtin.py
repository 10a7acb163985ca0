"""Built-in tools through which a model spawns children and waits for them.

They are registered in every runtime and pass through the Tool Gate and the journal
like any other tool. ``spawn_session`` needs the ``session.spawn`` capability;
``wait_for_children`` is allowed only to a session that has children. ``spawn_session`` is
idempotent because the child is keyed by the call's idempotency key, so a re-run after
a crash finds the same child instead of making a second one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sessiontree._budget import Budget
from sessiontree._messages import SessionSpawnRequest, SessionSpawnResponse
from sessiontree.tools.registry import EffectClass, Tool, ToolContext, ToolError

SPAWN_CAPABILITY = "session.spawn"


class SpawnPort(Protocol):
    def spawn(self, request: SessionSpawnRequest) -> SessionSpawnResponse: ...


class SpawnSessionArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: str = Field(min_length=1, max_length=200, description="the child's role")
    task: str = Field(max_length=200_000, description="what the child should do")
    budget: Budget | None = Field(default=None, description="slice of this session's budget")
    capabilities: list[str] = Field(
        default_factory=list,
        description="capabilities asked for: the child gets their intersection with ours "
        "(scopes narrowed, never widened); the result lists what was granted and dropped",
    )
    system: str | None = None
    provider: str | None = Field(
        default=None, description="registered provider for the child (default: ours)"
    )
    workspace_mode: Literal["shared", "worktree"] = Field(
        default="shared",
        description="'shared': the child works in this session's workspace, under path "
        "leases; 'worktree': its own git worktree and branch, merged back with merge_child "
        "(needs this session in worktree mode)",
    )

    @field_validator("role")
    @classmethod
    def _role_is_storable(cls, role: str) -> str:
        try:
            role.encode("utf-8")  # it is stored in a column
        except UnicodeEncodeError:
            raise ValueError("role holds a lone surrogate; give it as valid Unicode text") from None
        return role


class WaitForChildrenArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    children: list[str] | None = Field(
        default=None, description="child ids to wait for; default: every child not yet awaited"
    )


@dataclass(frozen=True)
class WaitForChildren:
    """Returned by ``wait_for_children``: the actor parks the session until they announce."""

    children: tuple[str, ...] | None


def _spawn(ctx: ToolContext, args: SpawnSessionArgs) -> dict[str, Any]:
    port: SpawnPort = ctx.services
    response = port.spawn(
        SessionSpawnRequest(
            parent_id=ctx.session_id,
            role=args.role,
            task=args.task,
            budget=args.budget,
            capabilities=tuple(args.capabilities),
            system=args.system,
            provider=args.provider,
            workspace_mode=args.workspace_mode,
            spawn_key=ctx.idempotency_key,
            call_id=ctx.call_id,
        )
    )
    if not response.accepted:
        raise ToolError(
            f"spawn rejected: {response.reason}: {response.detail}", reason=response.reason
        )
    return {
        "child_id": response.child_id,
        "budget": response.budget.model_dump(mode="json") if response.budget else None,
        "capabilities_granted": list(response.granted),
        "capabilities_dropped": list(response.dropped),
    }


def _wait(ctx: ToolContext, args: WaitForChildrenArgs) -> WaitForChildren:
    return WaitForChildren(tuple(args.children) if args.children is not None else None)


SPAWN_SESSION = Tool(
    name="spawn_session",
    description="Start a child session with a role and a task; returns its id and the "
    "capabilities it was granted (what you asked for, within what you hold) and dropped.",
    args_model=SpawnSessionArgs,
    fn=_spawn,
    effect=EffectClass.IDEMPOTENT,
    capability=SPAWN_CAPABILITY,
    builtin=True,
)

WAIT_FOR_CHILDREN = Tool(
    name="wait_for_children",
    description="Wait until the given children (default: all) have announced back; "
    "returns their status and summaries.",
    args_model=WaitForChildrenArgs,
    fn=_wait,
    effect=EffectClass.READ_ONLY,
    capability=None,
    builtin=True,
)

BUILTIN_TOOLS = (SPAWN_SESSION, WAIT_FOR_CHILDREN)
