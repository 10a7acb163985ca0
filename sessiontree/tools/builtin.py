"""Built-in tools through which a model spawns children, waits for them, and talks to
conversational ones.

They are registered in every runtime and pass through the Tool Gate and the journal
like any other tool. ``spawn_session``, ``send_to_child`` and ``close_child`` need the
``session.spawn`` capability; ``wait_for_children`` is allowed only to a session that
has children. ``spawn_session`` is idempotent because the child is keyed
by the call's idempotency key, so a re-run after a crash finds the same child instead of
making a second one; ``send_to_child`` likewise queues one message per call.

A child spawned with ``keep_open=true`` is a long-lived worker: it answers its task,
then waits ``idle``; ``send_to_child`` gives it more work (one message at a time, in
order), each answer spending the child's own budget -- carved from this session's at
spawn, as for any child, and returned unused when it ends. It announces back only when
it ends: ``close_child`` ends it ``completed`` with its latest answer as its summary,
which ``wait_for_children`` then returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sessiontree._budget import Budget
from sessiontree._limits import AutoShutdown, RestartType, Strategy, SupervisorPolicy
from sessiontree._messages import (
    SessionSpawnRequest,
    SessionSpawnResponse,
    check_child_supervision,
)
from sessiontree.tools.registry import EffectClass, Tool, ToolContext, ToolError

SPAWN_CAPABILITY = "session.spawn"


class SpawnPort(Protocol):
    def spawn(self, request: SessionSpawnRequest) -> SessionSpawnResponse: ...

    def send_to_child(
        self, parent_id: str, child_id: str, text: str, call_id: str
    ) -> dict[str, Any]: ...

    def close_child(self, parent_id: str, child_id: str) -> dict[str, Any]: ...


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
    restart: RestartType | None = Field(
        default=None, description="permanent | transient | temporary (default transient)")
    child_strategy: Strategy | None = Field(
        default=None, description="for the child's own children (default one_for_one)")
    supervisor: SupervisorPolicy | None = Field(
        default=None, description="the child's supervisor intensity over its own children "
        "(default 5 restarts in 60 s)")
    auto_shutdown: AutoShutdown | None = Field(
        default=None, description="the child ends when any/all of its significant children "
        "end (default never)")
    significant: bool = Field(
        default=False, description="our auto_shutdown counts this child (never permanent)")
    shutdown: float | Literal["brutal_kill"] | None = Field(
        default=None, description="seconds a stopped attempt of the child gets (default 5)")
    keep_open: bool = Field(
        default=False, description="a conversational worker: answers, then waits for "
        "send_to_child until close_child")

    @model_validator(mode="after")
    def _check(self) -> SpawnSessionArgs:
        check_child_supervision(self.restart, self.significant, self.shutdown)
        return self


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
            restart=args.restart,
            child_strategy=args.child_strategy,
            supervisor=args.supervisor,
            auto_shutdown=args.auto_shutdown,
            significant=args.significant,
            shutdown=args.shutdown,
            keep_open=args.keep_open,
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


class SendToChildArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    child_id: str = Field(min_length=1, max_length=200, description="a child spawned keep_open")
    text: str = Field(max_length=200_000, description="the message")


class CloseChildArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    child_id: str = Field(min_length=1, max_length=200)


def _send_to_child(ctx: ToolContext, args: SendToChildArgs) -> dict[str, Any]:
    port: SpawnPort = ctx.services
    return port.send_to_child(ctx.session_id, args.child_id, args.text, ctx.call_id)


def _close_child(ctx: ToolContext, args: CloseChildArgs) -> dict[str, Any]:
    port: SpawnPort = ctx.services
    return port.close_child(ctx.session_id, args.child_id)


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

SEND_TO_CHILD = Tool(
    name="send_to_child",
    description="Send a message to a conversational child (spawned with keep_open); it "
    "answers in turn. Returns the queued job's id.",
    args_model=SendToChildArgs,
    fn=_send_to_child,
    effect=EffectClass.IDEMPOTENT,
    capability=SPAWN_CAPABILITY,
    builtin=True,
)

CLOSE_CHILD = Tool(
    name="close_child",
    description="End an idle conversational child (completed); it announces back with its "
    "latest answer, which wait_for_children returns.",
    args_model=CloseChildArgs,
    fn=_close_child,
    effect=EffectClass.IDEMPOTENT,
    capability=SPAWN_CAPABILITY,
    builtin=True,
)

BUILTIN_TOOLS = (SPAWN_SESSION, WAIT_FOR_CHILDREN, SEND_TO_CHILD, CLOSE_CHILD)
